import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { apiCollector } from "../../../src/collectors/api.js";
import { blobFromModelfile, parsePsResponse, psCollector } from "../../../src/collectors/ps.js";
import {
  createTagsCollector,
  parseTagsResponse,
  TAGS_REFRESH_MS,
  tagsCollector,
} from "../../../src/collectors/tags.js";
import { ManualClock } from "../../../src/core/clock.js";
import { waitFor } from "../../support/wait.js";
import { json, startServer, type TestServer, testContext } from "./support.js";

const PS_BODY = {
  models: [
    {
      name: "llama3.2:latest",
      model: "llama3.2:latest",
      size: 3_936_710_656,
      digest: "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
      details: { format: "gguf", family: "llama", parameter_size: "3.2B", quantization_level: "Q4_K_M" },
      expires_at: "2026-01-01T00:05:00.123456789Z",
      size_vram: 3_936_710_656,
      context_length: 8192,
    },
    {
      name: "qwen3:0.6b",
      model: "qwen3:0.6b",
      size: 1_000_000,
      digest: "7df6b6e09427",
      details: {},
      expires_at: "2318-05-20T03:10:44.000000001+02:00",
      size_vram: 0,
    },
  ],
};

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Routes by path; a handler that never answers is a hang. */
async function ollama(routes: Record<string, (response: ServerResponse) => void>) {
  server = await startServer((request, response) => {
    const route = routes[request.url ?? ""];
    if (route) route(response);
    else json(response, 404, { error: "not found" });
  });
  return server;
}
const hang = () => {};
const contextFor = (url: string, apiTimeout = "5s") =>
  testContext({ config: { targets: [{ name: "t", url }], detection: { apiTimeout } } });

describe("api collector", () => {
  it("up with version and latency", async () => {
    const { url } = await ollama({ "/api/version": (r) => json(r, 200, { version: "0.12.6" }) });
    const output = await apiCollector.collect(contextFor(url));
    expect(output).toEqual({
      applies: true,
      value: { up: true, latencyMs: expect.any(Number), version: "0.12.6" },
    });
  });

  it("a 500 is down with the status", async () => {
    const { url } = await ollama({ "/api/version": (r) => json(r, 500, { error: "boom" }) });
    const output = await apiCollector.collect(contextFor(url));
    expect(output.applies && output.value).toMatchObject({ up: false, error: "/api/version: HTTP 500" });
  });

  it("a hang is down at apiTimeout", async () => {
    const { url } = await ollama({ "/api/version": hang });
    const started = performance.now();
    const output = await apiCollector.collect(contextFor(url, "150ms"));
    expect(output.applies && output.value).toMatchObject({
      up: false,
      error: "/api/version did not answer within 150ms",
    });
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it("connection refused is down", async () => {
    const { url } = await ollama({});
    await server?.close();
    server = undefined;
    const output = await apiCollector.collect(contextFor(url));
    expect(output.applies && output.value).toMatchObject({ up: false, error: "/api/version: ECONNREFUSED" });
  });

  it("works with a trailing slash in the target URL", async () => {
    const { url } = await ollama({ "/api/version": (r) => json(r, 200, { version: "0.5.1" }) });
    const output = await apiCollector.collect(contextFor(`${url}/`));
    expect(output.applies && output.value.version).toBe("0.5.1");
  });
});

describe("ps collector", () => {
  it("maps snake_case to LoadedModel and measures latency", async () => {
    const { url } = await ollama({ "/api/ps": (r) => json(r, 200, PS_BODY) });
    const output = await psCollector.collect(contextFor(url));
    expect(output).toEqual({
      applies: true,
      value: {
        latencyMs: expect.any(Number),
        models: [
          {
            name: "llama3.2:latest",
            model: "llama3.2:latest",
            size: 3_936_710_656,
            sizeVram: 3_936_710_656,
            digest: "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            expiresAt: "2026-01-01T00:05:00.123456789Z",
            contextLength: 8192,
            details: PS_BODY.models[0]?.details,
          },
          {
            name: "qwen3:0.6b",
            model: "qwen3:0.6b",
            size: 1_000_000,
            sizeVram: 0,
            digest: "7df6b6e09427",
            expiresAt: "2318-05-20T03:10:44.000000001+02:00",
            contextLength: null,
            details: {},
          },
        ],
      },
    });
  });

  it("learns each model's weights blob from /api/show once, beside the tick", async () => {
    const blob = "sha256-dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff";
    let shows = 0;
    const { url } = await ollama({
      "/api/ps": (r) => json(r, 200, { models: [PS_BODY.models[0]] }),
      "/api/show": (r) => {
        shows++;
        json(r, 200, {
          modelfile: `# Modelfile generated by "ollama show"\n# FROM llama3.2:latest\n\nFROM /usr/share/ollama/.ollama/models/blobs/${blob}\nTEMPLATE x\n`,
        });
      },
    });
    const first = await psCollector.collect(contextFor(url));
    expect(first.applies && first.value.models[0]?.blob).toBeFalsy();
    const later = await waitFor(async () => {
      const output = await psCollector.collect(contextFor(url));
      return output.applies && output.value.models[0]?.blob;
    });
    expect(later).toBe(blob);
    expect(shows).toBe(1);
  });

  it("reads the blob from a Modelfile's FROM line, not from its comments", () => {
    expect(
      blobFromModelfile("# FROM sha256-0123456789abcdef\nFROM /m/blobs/sha256-00112233445566778899\n"),
    ).toBe("sha256-00112233445566778899");
    expect(blobFromModelfile("FROM llama3.2\n")).toBeUndefined();
    expect(blobFromModelfile(undefined)).toBeUndefined();
  });

  it("an empty list is no models", () => {
    expect(parsePsResponse({ models: [] })).toEqual([]);
    expect(() => parsePsResponse({})).toThrow(/no models array/);
  });

  it("a timeout is an error with a clear message", async () => {
    const { url } = await ollama({ "/api/ps": hang });
    await expect(psCollector.collect(contextFor(url, "150ms"))).rejects.toThrow(
      "/api/ps did not answer within 150ms",
    );
  });

  it("a 500 is an error carrying Ollama's text", async () => {
    const { url } = await ollama({ "/api/ps": (r) => json(r, 500, { error: "scheduler is busy" }) });
    await expect(psCollector.collect(contextFor(url))).rejects.toThrow(
      "/api/ps: HTTP 500: scheduler is busy",
    );
  });
});

describe("tags collector", () => {
  it("lists the model names", async () => {
    const { url } = await ollama({
      "/api/tags": (r) =>
        json(r, 200, { models: [{ name: "llama3.2:latest" }, { name: "qwen3:0.6b", model: "qwen3:0.6b" }] }),
    });
    const output = await tagsCollector.collect(contextFor(url));
    expect(output).toEqual({
      applies: true,
      value: { models: ["llama3.2:latest", "qwen3:0.6b"], latencyMs: expect.any(Number) },
    });
  });

  it("parses bodies defensively", () => {
    expect(parseTagsResponse({ models: [{ model: "only-model-key" }, {}, null] })).toEqual([
      "only-model-key",
    ]);
  });

  it("asks at most once a minute per target, and answers with the last list in between", async () => {
    let asked = 0;
    const { url } = await ollama({
      "/api/tags": (r) => {
        asked++;
        json(r, 200, { models: [{ name: `model-${asked}` }] });
      },
    });
    const clock = new ManualClock();
    const collector = createTagsCollector();
    const ctx = { ...contextFor(url), clock };
    const models = async () => {
      const output = await collector.collect(ctx);
      return output.applies ? output.value.models : undefined;
    };
    expect(await models()).toEqual(["model-1"]);
    clock.advance(TAGS_REFRESH_MS - 1);
    expect(await models()).toEqual(["model-1"]);
    expect(asked).toBe(1);
    clock.advance(1);
    expect(await models()).toEqual(["model-2"]);
    // Another target is asked on its own schedule.
    const other = { ...ctx, target: { ...ctx.target, name: "other" } };
    await collector.collect(other);
    expect(asked).toBe(3);
  });

  it("a failure is not remembered: the next tick asks again", async () => {
    let fail = true;
    const { url } = await ollama({
      "/api/tags": (r) => (fail ? json(r, 500, { error: "disk" }) : json(r, 200, { models: [] })),
    });
    const collector = createTagsCollector();
    await expect(collector.collect(contextFor(url))).rejects.toThrow("/api/tags: HTTP 500: disk");
    fail = false;
    expect(await collector.collect(contextFor(url))).toMatchObject({ applies: true, value: { models: [] } });
  });

  it("a hang is an error at apiTimeout", async () => {
    const { url } = await ollama({ "/api/tags": hang });
    await expect(tagsCollector.collect(contextFor(url, "150ms"))).rejects.toThrow(
      "/api/tags did not answer within 150ms",
    );
  });
});
