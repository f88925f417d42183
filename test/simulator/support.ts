import { readFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { type ExecResult, execArgv } from "../../src/core/exec.js";
import { startSimulator } from "../../src/simulator/index.js";
import type { Simulator, SimulatorOptions } from "../../src/simulator/types.js";

export const MODEL = "llama3.2:1b";
export const OTHER_MODEL = "qwen2.5:0.5b";
export const EMBED_MODEL = "nomic-embed-text:latest";
/** Test timings: Ollama's seconds become tens of milliseconds. */
export const FAST = {
  loadMs: 30,
  tokenIntervalMs: 10,
  cpuMsPerToken: 4,
  gpuBusyWindowMs: 300,
  vramRecoveryMs: 300,
  vramConvergeMs: 20,
  healthPingTimeoutMs: 5000,
  discoveryMs: 150,
};

const started: Simulator[] = [];

/** A simulator with test timings; stopAll() (afterEach) kills it and its runners. */
export async function startFast(options: SimulatorOptions = {}): Promise<Simulator> {
  const simulator = await startSimulator({ ...options, timing: { ...FAST, ...options.timing } });
  started.push(simulator);
  return simulator;
}

/** The server log as written for the journalctl stand-in: each entry's MESSAGE. */
export function serverLog(simulator: Simulator): string[] {
  return readFileSync(simulator.serverLogPath, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { MESSAGE: string }).MESSAGE);
}

export async function stopAll(): Promise<void> {
  const all = started.splice(0);
  await Promise.all(all.map((simulator) => simulator.stop()));
}

/** utime + stime of a process, in clock ticks. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

export function cmdline(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
}

export const RUNNER_REGEX = /ollama runner|ollama_llama_server|llama-server/;

const watching = new WeakMap<Promise<RawResult>, () => void>();

/** Ends a watchRequest now (drops the connection); resolves with what had arrived. */
export function stopWatching(watch: Promise<RawResult>): Promise<RawResult> {
  watching.get(watch)?.();
  return watch;
}

export interface RawResult {
  /** Status and body so far; undefined status = not a single byte within the wait. */
  status?: number;
  body: string;
  /** The response ended within the wait. */
  ended: boolean;
}

/**
 * Sends a request and watches it for at most `waitMs`: what arrived (possibly nothing), then
 * drops the connection. Bounded "nothing happens" checks are built on this.
 */
export function watchRequest(
  url: string,
  body: unknown,
  waitMs: number,
  method = "POST",
): Promise<RawResult> {
  let stop: () => void = () => undefined;
  const watch = new Promise<RawResult>((resolve) => {
    const result: RawResult = { body: "", ended: false };
    const req = request(url, { method, headers: { "content-type": "application/json" } }, (res) => {
      result.status = res.statusCode;
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        result.body += chunk;
      });
      res.on("end", () => {
        result.ended = true;
        finish();
      });
      res.on("error", () => undefined);
    });
    const timer = setTimeout(() => finish(), waitMs);
    let done = false;
    function finish() {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    }
    req.on("error", () => finish());
    stop = finish;
    if (body === undefined) req.end();
    else req.end(JSON.stringify(body));
  });
  watching.set(watch, () => stop());
  return watch;
}

export function generateBody(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: MODEL, prompt: "Why is the sky blue?", ...extra };
}

export async function generateOnce(simulator: Simulator, extra: Record<string, unknown> = {}) {
  const response = await fetch(`${simulator.url}/api/generate`, {
    method: "POST",
    body: JSON.stringify(generateBody({ stream: false, ...extra })),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export async function ps(
  simulator: Simulator,
  timeoutMs = 5000,
): Promise<{ models: Record<string, unknown>[] }> {
  const response = await fetch(`${simulator.url}/api/ps`, { signal: AbortSignal.timeout(timeoutMs) });
  return (await response.json()) as { models: Record<string, unknown>[] };
}

export function nvidiaSmi(simulator: Simulator, args: string[], timeoutMs = 5000): Promise<ExecResult> {
  return execArgv([simulator.nvidiaSmiPath, ...args], { timeoutMs });
}

/** utilization.gpu (%) and memory.used (MiB) from the fake nvidia-smi. */
export async function gpuReading(simulator: Simulator): Promise<{ util: number; memoryMiB: number }> {
  const result = await nvidiaSmi(simulator, [
    "--query-gpu=utilization.gpu,memory.used",
    "--format=csv,noheader,nounits",
  ]);
  const [util, memory] = result.stdout.trim().split(", ");
  return { util: Number(util), memoryMiB: Number(memory) };
}

export async function control(simulator: Simulator, method: string, path: string, body?: unknown) {
  const response = await fetch(`${simulator.url}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export async function loadModel(simulator: Simulator, model = MODEL): Promise<number> {
  const { status, body } = await generateOnce(simulator, { model, options: { num_predict: 1 } });
  if (status !== 200) throw new Error(`load failed: ${status} ${JSON.stringify(body)}`);
  const runner = simulator.runners().find((r) => r.model === model);
  if (!runner) throw new Error("no runner after load");
  return runner.pid;
}

/** CPU ticks a process used over a bounded window. */
export async function cpuTicksOver(pid: number, windowMs: number): Promise<number> {
  const before = cpuTicks(pid);
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  return cpuTicks(pid) - before;
}

/** Whether a TCP connection to the simulator's port is accepted. */
export function tcpAccepts(simulator: Simulator): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(simulator.port, "127.0.0.1");
    socket.setTimeout(2000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export async function simState(simulator: Simulator): Promise<SimState> {
  return (await control(simulator, "GET", "/_sim/state")).body as unknown as SimState;
}

export interface SimState {
  startedAt: string;
  fault: ({ name: string; boundTo: { model: string; pid: number } | null } & Record<string, unknown>) | null;
  runners: {
    model: string;
    pid: number | null;
    alive: boolean;
    status: string;
    active: number;
    refCount: number;
    lastTokenAt: string | null;
  }[];
  waiting: number;
  log: string[];
}
