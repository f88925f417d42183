import { describe, expect, it } from "vitest";
import type { ProcessSample } from "../../../src/core/types.js";
import { EXPIRED_KEEP_ALIVE_SECONDS, isExpired, keepAliveFor } from "../../../src/detector/keep-alive.js";
import { runnerForModel } from "../../../src/detector/runners.js";

const NOW = Date.UTC(2026, 0, 1, 12);

describe("keepAliveFor: a canary preserves the model's expiry", () => {
  it.each([
    ["keep_alive -1 (centuries ahead)", "2318-03-04T10:00:00Z", -1],
    ["4m59.2s left → rounded up", new Date(NOW + 299_200).toISOString(), 300],
    ["24h left", new Date(NOW + 86_400_000).toISOString(), 86_400],
    ["already past (stuck Stopping)", new Date(NOW - 60_000).toISOString(), EXPIRED_KEEP_ALIVE_SECONDS],
    ["zero time (not set yet)", "0001-01-01T00:00:00Z", undefined],
    ["unparsable", "soon", undefined],
    ["Ollama's nanosecond timestamp with an offset", "2026-01-01T13:00:30.999999999+01:00", 31],
  ])("%s", (_name, expiresAt, expected) => {
    expect(keepAliveFor(expiresAt, NOW)).toBe(expected);
  });

  it("expired only when a real expiry has passed", () => {
    expect(isExpired(new Date(NOW - 1).toISOString(), NOW)).toBe(true);
    expect(isExpired("0001-01-01T00:00:00Z", NOW)).toBe(false);
    expect(isExpired(new Date(NOW + 1000).toISOString(), NOW)).toBe(false);
  });
});

function runner(pid: number, modelPath?: string): ProcessSample {
  const sample: ProcessSample = {
    pid,
    ppid: 1,
    cmdline: "ollama runner",
    state: "S",
    cpuSeconds: 0,
    startSeconds: pid,
  };
  if (modelPath) sample.modelPath = modelPath;
  return sample;
}

describe("runnerForModel", () => {
  const model = {
    name: "llama3.2",
    digest: "sha256:a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
  };
  it("prefers the learned pid, then a --model path with the digest, then the only runner", () => {
    expect(runnerForModel(model, [runner(1), runner(2)], 2)?.pid).toBe(2);
    const byDigest = runner(
      3,
      "/usr/share/ollama/.ollama/models/blobs/sha256-a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
    );
    expect(runnerForModel(model, [runner(1), byDigest], undefined)?.pid).toBe(3);
    expect(runnerForModel(model, [runner(9)], 4)?.pid).toBe(9);
    expect(runnerForModel(model, [runner(1), runner(2)], undefined)).toBeUndefined();
    expect(runnerForModel(model, [], undefined)).toBeUndefined();
  });

  it("matches the runner by the weights blob /api/show names, even against a learned pid", () => {
    const blob = "sha256-dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff";
    const withBlob = { ...model, blob };
    const other = runner(
      1,
      "/usr/share/ollama/.ollama/models/blobs/sha256-74701a8c35f6c8d9a4b91f3f3497643001d63e0c7a84e085bed452548fa88d45",
    );
    const mine = runner(2, `/usr/share/ollama/.ollama/models/blobs/${blob}`);
    expect(runnerForModel(withBlob, [other, mine], undefined)?.pid).toBe(2);
    expect(runnerForModel(withBlob, [other, mine], 1)?.pid).toBe(2);
  });
});
