import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { observeTarget } from "../../../src/collectors/observe.js";
import type { GpuSample } from "../../../src/core/types.js";
import { json, scratchDir, startServer, type TestServer, testContext } from "./support.js";

let server: TestServer | undefined;
let root: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir: root, cleanup } = scratchDir("observe"));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  cleanup();
});

function writeProc(pid: number, comm: string, ppid: number, argv: string[]): void {
  mkdirSync(join(root, String(pid)));
  const rest = `S ${ppid} ${pid} ${pid} 0 -1 0 0 0 0 0 300 200 0 0 20 0 1 0 4200 0 0`;
  writeFileSync(join(root, String(pid), "stat"), `${pid} (${comm}) ${rest}\n`);
  writeFileSync(join(root, String(pid), "cmdline"), `${argv.join("\0")}\0`);
  writeFileSync(join(root, String(pid), "status"), "VmRSS:\t1024 kB\n");
}

const GPU: GpuSample = { index: "0", uuid: "GPU-1", name: "Fake GPU", utilization: 0 };

describe("observeTarget", () => {
  it("assembles api, ps, tags, processes and the host GPUs, with one status per collector", async () => {
    server = await startServer((request, response) => {
      if (request.url === "/api/version") json(response, 200, { version: "0.12.6" });
      else if (request.url === "/api/ps") json(response, 200, { models: [] });
      else if (request.url === "/api/tags") json(response, 200, { models: [{ name: "llama3.2:latest" }] });
    });
    writeProc(100, "ollama", 1, ["/usr/local/bin/ollama", "serve"]);
    writeProc(101, "ollama", 100, [
      "/usr/local/bin/ollama",
      "runner",
      "--ollama-engine",
      "--model",
      "/blobs/sha256-x",
      "--port",
      "5000",
    ]);
    const ctx = testContext({
      procRoot: root,
      config: { targets: [{ name: "box", url: server.url, restart: { command: { argv: ["/bin/true"] } } }] },
    });

    const observation = await observeTarget(ctx, [GPU]);

    expect(observation).toMatchObject({
      target: "box",
      mono: expect.any(Number),
      wall: expect.any(Number),
      api: { up: true, version: "0.12.6" },
      ps: { models: [], latencyMs: expect.any(Number) },
      tags: { models: ["llama3.2:latest"] },
      gpus: [GPU],
      processes: {
        server: [expect.objectContaining({ pid: 100, cpuSeconds: 5 })],
        runners: [expect.objectContaining({ pid: 101, port: 5000 })],
      },
    });
    expect(observation).not.toHaveProperty("psError");
    expect(observation).not.toHaveProperty("journal");
    expect(observation.collectors.map((c) => [c.collector, c.applies, c.success])).toEqual([
      ["api", true, true],
      ["ps", true, true],
      ["tags", true, true],
      ["procfs", true, true],
      ["journal", false, true],
    ]);
  });

  it("an API that hangs leaves api down, psError set, and still returns within the deadlines", async () => {
    server = await startServer(() => {});
    const ctx = testContext({
      config: {
        targets: [{ name: "hung", url: server.url, journalUnit: null }],
        detection: { apiTimeout: "150ms" },
      },
    });
    const started = performance.now();
    const observation = await observeTarget(ctx);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(observation.api).toMatchObject({ up: false, error: "/api/version did not answer within 150ms" });
    expect(observation.psError).toBe("/api/ps did not answer within 150ms");
    expect(observation).not.toHaveProperty("ps");
    expect(observation).not.toHaveProperty("tags");
    expect(observation).not.toHaveProperty("gpus");
    expect(observation.collectors.find((c) => c.collector === "tags")).toMatchObject({ success: false });
    expect(observation.collectors.find((c) => c.collector === "procfs")).toMatchObject({ applies: false });
  });
});
