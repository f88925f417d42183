import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FAULTS } from "../../src/simulator/index.js";
import { FAULT_NAMES } from "../../src/simulator/types.js";
import { waitFor } from "../support/wait.js";
import {
  control,
  cpuTicksOver,
  generateOnce,
  gpuReading,
  loadModel,
  MODEL,
  nvidiaSmi,
  OTHER_MODEL,
  processState,
  ps,
  simState,
  startFast,
  stopAll,
  tcpAccepts,
  watchRequest,
} from "./support.js";

afterEach(stopAll);

const NO_BYTE_WAIT_MS = 700;
const generateUrl = (url: string) => `${url}/api/generate`;
const alive = (pid: number) => {
  const state = processState(pid);
  return state !== undefined && state !== "Z";
};

describe("the fault registry", () => {
  it("has one module per fault name, each with a one-line summary", () => {
    expect(FAULTS.map((fault) => fault.name)).toEqual([...FAULT_NAMES]);
    for (const fault of FAULTS) expect(fault.summary).not.toMatch(/\n/);
  });

  it("is driven through the control API, which rejects unknown faults", async () => {
    const simulator = await startFast();
    expect((await control(simulator, "POST", "/_sim/fault", { name: "nope" })).status).toBe(400);
    expect((await control(simulator, "POST", "/_sim/fault", { name: "errors" })).body.fault).toMatchObject({
      name: "errors",
    });
    expect((await generateOnce(simulator)).status).toBe(500);
    expect((await control(simulator, "DELETE", "/_sim/fault")).body.fault).toBeNull();
    expect((await generateOnce(simulator)).status).toBe(200);
    const before = (await simState(simulator)).startedAt;
    const restarted = await control(simulator, "POST", "/_sim/restart");
    expect(restarted.status).toBe(200);
    expect(restarted.body.startedAt).not.toBe(before);
    expect(simulator.runners()).toEqual([]);
  });
});

describe("failure modes (FAILURE-MODES.md F1–F9)", () => {
  it("F1 runner-deadlock: APIs answer, model listed, no byte, runner alive with flat CPU, GPU idle with VRAM held", async () => {
    const simulator = await startFast();
    const pid = await loadModel(simulator);
    simulator.setFault({ name: "runner-deadlock" });
    await waitFor(async () => (await simState(simulator)).fault?.boundTo?.pid === pid);
    expect((await fetch(`${simulator.url}/api/tags`)).status).toBe(200);
    expect((await ps(simulator)).models.map((m) => m.name)).toEqual([MODEL]);
    const hung = watchRequest(generateUrl(simulator.url), { model: MODEL, prompt: "hi" }, NO_BYTE_WAIT_MS);
    expect(await cpuTicksOver(pid, 500)).toBeLessThanOrEqual(2);
    expect((await hung).status).toBeUndefined();
    expect(alive(pid)).toBe(true);
    const gpu = await waitFor(async () => {
      const reading = await gpuReading(simulator);
      return reading.util === 0 ? reading : undefined;
    });
    expect(gpu.memoryMiB).toBeGreaterThan(1000);
    // What heals it: kill the runner; the next request reloads the model.
    process.kill(pid, "SIGKILL");
    await waitFor(() => simulator.runners().length === 0, { what: "runner exit noticed" });
    expect((await generateOnce(simulator)).status).toBe(200);
  });

  it("F1 runner-deadlock on an embedding model: /api/embed hangs too (embeddings run in the runner's batch loop)", async () => {
    const simulator = await startFast();
    const embedding = "nomic-embed-text:latest";
    const body = { model: embedding, input: "hi" };
    const loaded = await fetch(`${simulator.url}/api/embed`, { method: "POST", body: JSON.stringify(body) });
    expect(loaded.status).toBe(200);
    simulator.setFault({ name: "runner-deadlock", model: embedding });
    await waitFor(async () => (await simState(simulator)).fault?.boundTo);
    const hung = await watchRequest(`${simulator.url}/api/embed`, body, NO_BYTE_WAIT_MS);
    expect(hung.status).toBeUndefined();
  });

  it("F2 runner-spin: the runner burns a core, generates nothing, GPU idle", async () => {
    const simulator = await startFast();
    const pid = await loadModel(simulator);
    simulator.setFault({ name: "runner-spin", model: MODEL });
    await waitFor(async () => (await simState(simulator)).fault?.boundTo);
    const hung = watchRequest(generateUrl(simulator.url), { model: MODEL, prompt: "hi" }, NO_BYTE_WAIT_MS);
    expect(await cpuTicksOver(pid, 500)).toBeGreaterThanOrEqual(25);
    expect((await hung).status).toBeUndefined();
    await waitFor(async () => (await gpuReading(simulator)).util === 0);
  });

  it("F3 stream-stall: tokens flow, then stop, the connection open", async () => {
    const simulator = await startFast();
    await loadModel(simulator);
    simulator.setFault({ name: "stream-stall", afterTokens: 2 });
    await waitFor(async () => (await simState(simulator)).fault?.boundTo);
    const stalled = await watchRequest(
      generateUrl(simulator.url),
      { model: MODEL, prompt: "hi" },
      NO_BYTE_WAIT_MS,
    );
    expect(stalled.status).toBe(200);
    expect(stalled.ended).toBe(false);
    expect(
      stalled.body
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).response),
    ).toEqual(["The", " sky"]);
  });

  it("F4 stuck-stopping: listed with expires_at in the past, VRAM held, requests and new loads hang; killing the runner heals", async () => {
    const simulator = await startFast();
    const pid = await loadModel(simulator);
    simulator.setFault({ name: "stuck-stopping" });
    await waitFor(async () => (await simState(simulator)).fault?.boundTo);
    const listed = (await ps(simulator)).models[0];
    expect(new Date(listed?.expires_at as string).getTime()).toBeLessThan(Date.now());
    const [same, other] = await Promise.all([
      watchRequest(generateUrl(simulator.url), { model: MODEL, prompt: "hi" }, NO_BYTE_WAIT_MS),
      watchRequest(generateUrl(simulator.url), { model: OTHER_MODEL, prompt: "hi" }, NO_BYTE_WAIT_MS),
    ]);
    expect(same.status).toBeUndefined();
    expect(other.status).toBeUndefined();
    expect((await gpuReading(simulator)).memoryMiB).toBeGreaterThan(1000);
    process.kill(pid, "SIGKILL");
    await waitFor(async () => (await ps(simulator)).models.length === 0);
    expect((await generateOnce(simulator, { model: OTHER_MODEL })).status).toBe(200);
  });

  it("F5 scheduler-deadlock: loaded models keep working, new loads hang, /api/ps hangs; restart heals", async () => {
    const simulator = await startFast();
    await loadModel(simulator);
    simulator.setFault({ name: "scheduler-deadlock" });
    expect((await generateOnce(simulator)).status).toBe(200);
    const [psResult, load] = await Promise.all([
      watchRequest(`${simulator.url}/api/ps`, undefined, NO_BYTE_WAIT_MS, "GET"),
      watchRequest(generateUrl(simulator.url), { model: OTHER_MODEL, prompt: "hi" }, NO_BYTE_WAIT_MS),
    ]);
    expect(psResult.status).toBeUndefined();
    expect(load.status).toBeUndefined();
    expect((await fetch(`${simulator.url}/api/tags`)).status).toBe(200);
    await simulator.restart();
    expect((await ps(simulator)).models).toEqual([]);
    expect((await generateOnce(simulator, { model: OTHER_MODEL })).status).toBe(200);
  });

  it("F6 api-hang: TCP accepts, no HTTP answer; the control API answers; restart heals", async () => {
    const simulator = await startFast();
    simulator.setFault({ name: "api-hang" });
    expect(await tcpAccepts(simulator)).toBe(true);
    const [root, version] = await Promise.all([
      watchRequest(`${simulator.url}/`, undefined, NO_BYTE_WAIT_MS, "GET"),
      watchRequest(`${simulator.url}/api/version`, undefined, NO_BYTE_WAIT_MS, "GET"),
    ]);
    expect(root.status).toBeUndefined();
    expect(version.status).toBeUndefined();
    expect((await simState(simulator)).fault?.name).toBe("api-hang");
    await control(simulator, "POST", "/_sim/restart");
    expect((await fetch(`${simulator.url}/api/version`)).status).toBe(200);
  });

  it("F7 crash: connection refused, runners gone, until restart", async () => {
    const simulator = await startFast();
    const pid = await loadModel(simulator);
    simulator.setFault({ name: "crash" });
    await waitFor(async () => !(await tcpAccepts(simulator)));
    await waitFor(() => !alive(pid));
    await expect(fetch(`${simulator.url}/api/version`)).rejects.toMatchObject({
      cause: { code: "ECONNREFUSED" },
    });
    await waitFor(() => simulator.runners().length === 0, { what: "runners gone" });
    await simulator.restart();
    expect((await fetch(`${simulator.url}/api/version`)).status).toBe(200);
  });

  it("F8 wedged-gpu: generations hang with CUDA errors logged; survives restart() and a new process on the same stateDir", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "sim-wedged-"));
    try {
      const log: string[] = [];
      const simulator = await startFast({ stateDir, serverLog: (line) => log.push(line) });
      await loadModel(simulator);
      simulator.setFault({ name: "wedged-gpu" });
      expect(log.join("\n")).toContain("cudart init failure: 999");
      const hung = await watchRequest(
        generateUrl(simulator.url),
        { model: MODEL, prompt: "hi" },
        NO_BYTE_WAIT_MS,
      );
      expect(hung.status).toBeUndefined();
      await waitFor(() => log.some((line) => line.includes("CUDA error")));
      await simulator.restart();
      const afterRestart = await watchRequest(
        generateUrl(simulator.url),
        { model: MODEL, prompt: "hi" },
        NO_BYTE_WAIT_MS,
      );
      expect(afterRestart.status).toBeUndefined();
      expect((await gpuReading(simulator)).memoryMiB).toBeGreaterThan(1000);
      await simulator.stop();

      const again = await startFast({ stateDir });
      expect((await simState(again)).fault?.name).toBe("wedged-gpu");
      again.setFault(null);
      expect((await generateOnce(again)).status).toBe(200);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it("F9 errors and queue-full: 500 and 503 with Ollama's messages", async () => {
    const simulator = await startFast();
    simulator.setFault({ name: "errors" });
    expect(await generateOnce(simulator)).toEqual({
      status: 500,
      body: { error: "an error was encountered while running the model: unexpected EOF" },
    });
    simulator.setFault({ name: "queue-full" });
    expect(await generateOnce(simulator)).toEqual({
      status: 503,
      body: { error: "server busy, please try again.  maximum pending requests exceeded" },
    });
  });
});

describe("benign loads (B2–B5)", () => {
  it("B2 long-generation: tokens keep flowing, GPU busy, runner CPU advancing", async () => {
    const simulator = await startFast({ timing: { cpuMsPerToken: 6 } });
    simulator.setFault({ name: "long-generation", model: MODEL });
    await waitFor(async () => (await gpuReading(simulator)).util > 50, { what: "GPU busy" });
    const runner = await waitFor(() => simulator.runners()[0]);
    expect(await cpuTicksOver(runner.pid, 500)).toBeGreaterThanOrEqual(5);
    expect((await ps(simulator)).models.map((m) => m.name)).toEqual([MODEL]);
  });

  it.each([
    ["0.20", true],
    ["0.30", false],
  ])(
    "B3 slow-load on %s: no token yet; the loading model listed: %s (from 0.30 only loaded models are)",
    async (version, listed) => {
      const simulator = await startFast({ ollamaVersion: version });
      simulator.setFault({ name: "slow-load", loadMs: 5000 });
      const waiting = watchRequest(
        generateUrl(simulator.url),
        { model: MODEL, prompt: "hi" },
        NO_BYTE_WAIT_MS,
      );
      await waitFor(async () => (await simState(simulator)).runners[0]?.status === "loading");
      expect((await ps(simulator)).models.length).toBe(listed ? 1 : 0);
      expect((await waiting).status).toBeUndefined();
    },
  );

  it("B4 queueing: a request waits behind internal long requests while the GPU is busy", async () => {
    const simulator = await startFast({ numParallel: 1 });
    simulator.setFault({ name: "queueing", model: MODEL });
    await waitFor(async () => (await gpuReading(simulator)).util > 50, { what: "GPU busy" });
    const queued = await watchRequest(
      generateUrl(simulator.url),
      { model: MODEL, prompt: "hi" },
      NO_BYTE_WAIT_MS,
    );
    expect(queued.status).toBeUndefined();
    simulator.setFault(null);
    expect((await generateOnce(simulator)).status).toBe(200);
  });

  it("B5 gpu-tool-hang / -missing / -na: nvidia-smi hangs, vanishes, or prints [N/A]", async () => {
    const simulator = await startFast();
    const query = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader"];
    simulator.setFault({ name: "gpu-tool-hang" });
    const hung = await nvidiaSmi(simulator, query, 600);
    expect(hung.timedOut).toBe(true);
    simulator.setFault({ name: "gpu-tool-missing" });
    expect((await nvidiaSmi(simulator, query)).spawnError).toMatch(/ENOENT/);
    simulator.setFault({ name: "gpu-tool-na" });
    expect((await nvidiaSmi(simulator, query)).stdout).toMatch(/^\[N\/A\], \d+ MiB\n$/);
    simulator.setFault(null);
    expect((await nvidiaSmi(simulator, query)).stdout).toMatch(/^\d+ %, \d+ MiB\n$/);
  });
});
