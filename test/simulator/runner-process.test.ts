import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../support/wait.js";
import {
  cmdline,
  cpuTicksOver,
  generateOnce,
  loadModel,
  MODEL,
  processState,
  ps,
  RUNNER_REGEX,
  simState,
  startFast,
  stopAll,
  watchRequest,
} from "./support.js";

afterEach(stopAll);

describe("runner processes", () => {
  it("read like Ollama's runners, are children of the simulator, burn CPU only while generating", async () => {
    const simulator = await startFast({ timing: { answerTokens: 100_000, cpuMsPerToken: 8 } });
    const pid = await loadModel(simulator);
    const line = cmdline(pid);
    expect(line).toMatch(RUNNER_REGEX);
    expect(line.startsWith(`${simulator.profile.runner.program} `)).toBe(true);
    expect(line).toMatch(/ --model \S+\/blobs\/sha256-[0-9a-f]{64} .*--port \d+/);
    expect(await cpuTicksOver(pid, 400)).toBeLessThanOrEqual(2);
    const streaming = watchRequest(`${simulator.url}/api/generate`, { model: MODEL, prompt: "hi" }, 1500);
    await waitFor(async () => ((await ps(simulator)).models.length ? true : undefined));
    expect(await cpuTicksOver(pid, 700)).toBeGreaterThanOrEqual(10);
    expect((await streaming).status).toBe(200);
  });

  it("SIGSTOP freezes a generation with no byte; SIGCONT lets it finish", async () => {
    const simulator = await startFast();
    const pid = await loadModel(simulator);
    process.kill(pid, "SIGSTOP");
    await waitFor(() => processState(pid) === "T");
    const frozen = await watchRequest(`${simulator.url}/api/generate`, { model: MODEL, prompt: "hi" }, 800);
    expect(frozen.status).toBeUndefined();
    expect((await ps(simulator)).models.map((m) => m.name)).toEqual([MODEL]);
    const resumed = generateOnce(simulator);
    process.kill(pid, "SIGCONT");
    expect((await resumed).status).toBe(200);
  });

  it("SIGKILL fails the in-flight request with Ollama's 500 (llm/server.go: unexpected EOF); the next request reloads the model", async () => {
    const simulator = await startFast({ timing: { answerTokens: 100_000 } });
    const pid = await loadModel(simulator);
    const loadedAt = (await simState(simulator)).runners[0]?.lastTokenAt;
    const inFlight = generateOnce(simulator);
    await waitFor(async () => (await simState(simulator)).runners[0]?.lastTokenAt !== loadedAt, {
      what: "tokens",
    });
    process.kill(pid, "SIGKILL");
    expect(await inFlight).toEqual({
      status: 500,
      body: { error: "an error was encountered while running the model: unexpected EOF" },
    });
    // Ollama keeps listing the model until the next request finds the runner dead.
    expect((await ps(simulator)).models.map((m) => m.name)).toEqual([MODEL]);
    expect(simulator.runners()).toEqual([]);
    const again = await generateOnce(simulator, { options: { num_predict: 2 } });
    expect(again.status).toBe(200);
    expect(simulator.runners()[0]?.pid).not.toBe(pid);
  });

  it("a runner killed mid-stream ends the NDJSON stream with an error line", async () => {
    const simulator = await startFast({ timing: { answerTokens: 100_000 } });
    const pid = await loadModel(simulator);
    const lastTokenAt = async () => {
      const state = (await (await fetch(`${simulator.url}/_sim/state`)).json()) as {
        runners: { lastTokenAt: string }[];
      };
      return state.runners[0]?.lastTokenAt;
    };
    const loadedAt = await lastTokenAt();
    const streaming = watchRequest(`${simulator.url}/api/generate`, { model: MODEL, prompt: "hi" }, 5000);
    await waitFor(async () => (await lastTokenAt()) !== loadedAt, { what: "tokens streaming" });
    process.kill(pid, "SIGKILL");
    const result = await streaming;
    expect(result.status).toBe(200);
    expect(result.ended).toBe(true);
    const lines = result.body.trim().split("\n");
    expect(JSON.parse(lines.at(-1) as string)).toEqual({
      error: "an error was encountered while running the model: unexpected EOF",
    });
  });
});
