import { describe, expect, it } from "vitest";
import { bodyFormat, classifyEndpoint, modelOf } from "../../../src/proxy/endpoints.js";
import { StreamMeter } from "../../../src/proxy/meter.js";

const feedAll = (meter: StreamMeter, text: string, cuts: number[]) => {
  let from = 0;
  for (const cut of [...cuts, text.length]) {
    meter.feed(Buffer.from(text.slice(from, cut)));
    from = cut;
  }
  meter.end();
  return meter;
};

describe("StreamMeter", () => {
  const ndjson =
    '{"model":"m","response":"Hi","done":false}\n{"model":"m","response":"!","done":false}\n' +
    '{"model":"m","response":"","done":true,"done_reason":"stop","prompt_eval_count":12,"eval_count":2}\n';

  it.each([[[]], [[5]], [[41, 42, 43]], [[1, 2, 3, 100, 101]]])("counts NDJSON chunks cut at %j", (cuts) => {
    const meter = feedAll(new StreamMeter("ndjson"), ndjson, cuts);
    expect(meter.chunks).toBe(3);
    expect(meter.counters).toEqual({ generated: 2, prompt: 12 });
  });

  it("reads OpenAI usage from the SSE stream and skips [DONE]", () => {
    const sse =
      'data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}\n\n' +
      'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}\n\n' +
      "data: [DONE]\n\n";
    const meter = feedAll(new StreamMeter("sse"), sse, [7, 60]);
    expect(meter.chunks).toBe(2);
    expect(meter.counters).toEqual({ generated: 1, prompt: 5 });
  });

  it("reads a whole JSON answer's counters at its end, and ignores what it cannot read", () => {
    expect(feedAll(new StreamMeter("other"), '{"eval_count":4,"prompt_eval_count":3}', [3]).counters).toEqual(
      {
        generated: 4,
        prompt: 3,
      },
    );
    expect(feedAll(new StreamMeter("other"), '{"eval_count":-1', []).counters).toEqual({});
    const long = `{"response":"${"x".repeat(100_000)}","done":true,"eval_count":9}\n`;
    const meter = feedAll(new StreamMeter("ndjson"), long, [50_000]);
    expect(meter.counters).toEqual({});
  });
});

describe("endpoints", () => {
  it("labels every route from a fixed list and reads the model only from JSON bodies", () => {
    expect(classifyEndpoint("POST", "/api/generate")).toEqual({
      label: "/api/generate",
      readsModel: true,
      generates: true,
      inference: true,
    });
    expect(classifyEndpoint("POST", "/api/embed")).toMatchObject({ generates: false, inference: true });
    expect(classifyEndpoint("POST", "/api/blobs/sha256:abc")).toMatchObject({
      label: "/api/blobs",
      readsModel: false,
    });
    expect(classifyEndpoint("GET", "/api/show").readsModel).toBe(false);
    expect(classifyEndpoint("GET", "/random/../path").label).toBe("other");
    expect(bodyFormat("application/x-ndjson")).toBe("ndjson");
    expect(bodyFormat("text/event-stream; charset=utf-8")).toBe("sse");
    expect(modelOf(Buffer.from('{"model":"llama3.2"}'))).toBe("llama3.2");
    expect(modelOf(Buffer.from('{"name":"old"}'))).toBe("old");
    expect(modelOf(Buffer.from("[1]"))).toBe("");
  });
});
