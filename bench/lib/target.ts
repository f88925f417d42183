/**
 * One simulated Ollama (any profile) for a benchmark, wired the way the scenario tests wire it: a restart
 * supervisor standing in for systemd, a restart command the watchdog (or the bash rule) runs, a
 * server process title unique to this process, and the server's [GIN] request lines as events.
 */
import { join } from "node:path";
import {
  type Simulator,
  type SimulatorOptions,
  startSimulator,
  startSupervisor,
} from "../../src/simulator/index.js";

export const MODEL = "llama3.2:1b";
export const OTHER_MODEL = "qwen2.5:0.5b";

export interface BenchTarget {
  simulator: Simulator;
  url: string;
  /** argv that asks the supervisor to restart the simulator (no shell). */
  restartArgv: string[];
  /** Regex source matching this process's title (the "ollama serve" the watchdog looks for). */
  serverPattern: string;
  /**
   * Regex source matching only this simulator's runners, whatever the profile calls the binary:
   * their --model path lies in its stateDir (discovery children have no --model).
   */
  runnerPattern: string;
  /** performance.now() of every restart the supervisor carried out. */
  restarts: number[];
  /** performance.now() of the last [GIN] line (a completed request); undefined before any. */
  lastRequestAt(): number | undefined;
  onRequest(listener: (at: number) => void): void;
  stop(): Promise<void>;
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Names this process as a server the watchdog can find; call once, before any target starts. */
export function titleProcess(name: string): string {
  const title = `ollama serve ${name}`;
  process.title = title;
  return `^${escapeRegExp(title)}(\\s|$)`;
}

export async function startBenchTarget(options: {
  dir: string;
  serverPattern: string;
  simulator?: Partial<SimulatorOptions>;
}): Promise<BenchTarget> {
  let lastRequest: number | undefined;
  const listeners: ((at: number) => void)[] = [];
  const stateDir = join(options.dir, "simulator");
  const simulator = await startSimulator({
    stateDir,
    timing: { tokenIntervalMs: 10, loadMs: 100 },
    ...options.simulator,
    serverLog: (line) => {
      if (!line.startsWith("[GIN]")) return;
      const at = performance.now();
      lastRequest = at;
      for (const listener of listeners) listener(at);
    },
  });
  const supervisor = await startSupervisor(simulator);
  return {
    simulator,
    url: simulator.url,
    restartArgv: supervisor.restartArgv,
    serverPattern: options.serverPattern,
    runnerPattern: `\\s--model ${escapeRegExp(stateDir)}/`,
    restarts: supervisor.restarts,
    lastRequestAt: () => lastRequest,
    onRequest: (listener) => listeners.push(listener),
    async stop() {
      await simulator.stop();
      await supervisor.close();
    },
  };
}

/** One bounded generation; true when it finished with done: true. */
export async function generate(
  url: string,
  model: string,
  options: { timeoutMs: number; tokens?: number; keepAlive?: string; prompt?: string },
): Promise<boolean> {
  try {
    const response = await fetch(`${url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({
        model,
        prompt: options.prompt ?? "are you there?",
        stream: false,
        ...(options.keepAlive ? { keep_alive: options.keepAlive } : {}),
        options: { num_predict: options.tokens ?? 3 },
      }),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    return response.ok && ((await response.json()) as { done?: boolean }).done === true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
