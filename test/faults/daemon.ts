import { type ChildProcess, spawn } from "node:child_process";
import { CLI_ARGV } from "../support/paths.js";
import { waitFor } from "../support/wait.js";

/** A real `ollama-watchdog run` process for the fault suite (`npx tsup` first). */
export interface Daemon {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal) once it exited. */
  exited: Promise<number | null>;
  /** Its HTTP(S) base URL, from the "watchdog started" line. */
  url(): Promise<string>;
  /** SIGKILL if still running. */
  kill(): Promise<void>;
}

/** Starts `run --config <path>`, optionally behind a wrapper argv (e.g. unshare … sh -c). */
export function startDaemon(configPath: string, wrap?: (argv: string[]) => string[]): Daemon {
  const argv = [...CLI_ARGV, "run", "--config", configPath];
  const [program, ...args] = wrap ? wrap(argv) : argv;
  const child = spawn(program as string, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const append = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    url: () =>
      waitFor(() => /"url":"(https?:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1], {
        timeoutMs: 20_000,
        what: `the watchdog's start line (output so far: ${output.slice(-300)})`,
      }),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
}

/** The ticks /healthz reports, and its whole body. */
export async function health(
  url: string,
): Promise<{ status: number; body: { ticks: number; problems?: string[] } }> {
  const response = await fetch(`${url}/healthz`);
  return { status: response.status, body: (await response.json()) as { ticks: number; problems?: string[] } };
}

/** A config whose one target is down (nothing listens on port 9): the ladder goes to restart. */
export function downTargetConfig(options: {
  stateDir: string;
  restartArgv: string[];
  extra?: string[];
}): string {
  return [
    "interval: 100ms",
    "listen: 127.0.0.1:0",
    `stateDir: ${options.stateDir}`,
    "targets:",
    "  - name: local",
    "    url: http://127.0.0.1:9",
    `    restart: { command: { argv: ${JSON.stringify(options.restartArgv)}, timeout: 5s } }`,
    "detection: { apiTimeout: 200ms, downAfter: 1, startupGrace: 100ms, canary: { timeout: 500ms } }",
    "gpu: { backend: none }",
    ...(options.extra ?? []),
  ].join("\n");
}
