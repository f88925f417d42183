import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../../src/config/load.js";
import type { ProcessSample, ProcessView } from "../../../src/core/types.js";
import { provenRunner } from "../../../src/detector/runners.js";

const BLOB = "sha256-74701a8c35f6c8d9a4b91f3f3497643001d63e0c7a84e085bed452548fa88d45";
const MODELS = "/usr/share/ollama/.ollama/models/blobs";

function proc(pid: number, ppid: number, cmdline: string, modelPath?: string): ProcessSample {
  return {
    pid,
    ppid,
    cmdline,
    state: "S",
    cpuSeconds: 1,
    startSeconds: pid,
    ...(modelPath ? { modelPath } : {}),
  };
}

const SERVER = proc(100, 1, "ollama serve");
const view = (runners: ProcessSample[], extra: Partial<ProcessView> = {}): ProcessView => ({
  server: [SERVER],
  runners,
  ...extra,
});

describe("provenRunner (H2: kill only what is provably the target's own runner)", () => {
  const model = { name: "llama3.2", blob: BLOB };

  it("a child of the proven server whose --model is the model's blob", () => {
    const mine = proc(200, 100, `ollama runner --model ${MODELS}/${BLOB}`, `${MODELS}/${BLOB}`);
    const other = proc(201, 100, "ollama runner --model /x/sha256-other", "/x/sha256-other");
    expect(provenRunner(model, view([other, mine]))).toEqual({ runner: mine });
  });

  it("never the only runner when its weights are not the model's (the old fallback)", () => {
    const only = proc(200, 100, "ollama runner --model /x/sha256-other", "/x/sha256-other");
    expect(provenRunner(model, view([only]))).toEqual({
      why: `none of the server's 1 runner(s) serves llama3.2 (--model …/${BLOB})`,
    });
  });

  it("never a runner of another parent, even with the right blob", () => {
    const stranger = proc(300, 999, `llama-server --model ${MODELS}/${BLOB}`, `${MODELS}/${BLOB}`);
    expect("why" in provenRunner(model, view([stranger]))).toBe(true);
  });

  it("never when the server is unproven (remote target, two candidates), and says why", () => {
    const mine = proc(200, 100, `ollama runner --model ${MODELS}/${BLOB}`, `${MODELS}/${BLOB}`);
    expect(
      provenRunner(model, view([mine], { unproven: "the target's host gpu-box is not this host" })),
    ).toEqual({
      why: "the target's host gpu-box is not this host",
    });
    expect(provenRunner(model, undefined)).toEqual({
      why: "the target's processes were not observed this tick",
    });
  });

  it("never without the blob from /api/show", () => {
    const mine = proc(200, 100, `ollama runner --model ${MODELS}/${BLOB}`, `${MODELS}/${BLOB}`);
    expect(provenRunner({ name: "llama3.2" }, view([mine]))).toEqual({
      why: "/api/show did not name llama3.2's weights blob: its runner cannot be proven",
    });
  });

  it("an MLX runner names the model itself", () => {
    const mlx = proc(200, 100, "ollama runner --mlx-engine --model qwen3:4b --port 5", "qwen3:4b");
    expect(provenRunner({ name: "qwen3:4b" }, view([mlx]))).toEqual({ runner: mlx });
  });
});

describe("processes.* patterns (H2: nothing that matches everything)", () => {
  const withPatterns = (processes: Record<string, string>) => () =>
    parseConfig({ targets: [{ name: "t", url: "http://127.0.0.1:11434", processes }] }, {});

  it.each([[""], ["."], [".*"], ["[\\s\\S]"], ["\\w|\\W"], ["^"]])("rejects %j", (pattern) => {
    expect(withPatterns({ runner: pattern })).toThrow(ConfigError);
    expect(withPatterns({ runner: pattern })).toThrow(/processes\.runner.*matches every process/);
    expect(withPatterns({ server: pattern })).toThrow(/processes\.server.*matches every process/);
  });

  it.each([["[a-z]"], ["[a-z/]"], ["s"], ["in"], ["bash"]])(
    "rejects %j: it matches system processes",
    (pattern) => {
      expect(withPatterns({ runner: pattern })).toThrow(
        /processes\.runner: matches processes that are not Ollama's/,
      );
    },
  );

  it("accepts the defaults and a real pattern", () => {
    expect(
      withPatterns({ runner: "ollama runner|llama-server", server: "^/opt/ai/bin/serve\\b" }),
    ).not.toThrow();
  });
});
