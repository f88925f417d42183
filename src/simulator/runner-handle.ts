/**
 * The server's side of one runner process: spawn it with an Ollama-like command line, wait for it
 * to load, stream completions from it, change its mode, kill it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { request } from "node:http";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { distEntry } from "./dist-paths.js";
import {
  type CompletionLine,
  type CompletionRequest,
  RUNNER_CONFIG_ENV,
  type RunnerConfig,
  type RunnerMode,
} from "./runner-protocol.js";
import { describeExit } from "./wire.js";

export interface RunnerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Go's wording: "signal: killed", "exit status 2". */
  description: string;
}

/** Raised when the runner dies under a request: Ollama answers 500 with this message. */
export class RunnerTerminatedError extends Error {
  constructor(exit: RunnerExit) {
    super(`llama runner process has terminated: ${exit.description}`);
  }
}

/** The request never reached the runner: it had already died (Ollama's ping before reuse finds this). */
export class RunnerUnreachableError extends Error {}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

export class RunnerHandle {
  readonly exited: Promise<RunnerExit>;
  exit: RunnerExit | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exit = { code, signal, description: describeExit(code, signal) };
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  static async spawn(options: {
    blobPath: string;
    numCtx: number;
    numParallel: number;
    config: RunnerConfig;
    /** Each line the runner writes to stdout/stderr (Ollama copies them into its log). */
    onOutput: (line: string) => void;
  }): Promise<RunnerHandle> {
    const port = await freePort();
    const args = [
      "runner",
      "--model",
      options.blobPath,
      "--ctx-size",
      String(options.numCtx),
      "--batch-size",
      "512",
      "--n-gpu-layers",
      "999",
      "--threads",
      "2",
      "--parallel",
      String(options.numParallel),
      "--port",
      String(port),
    ];
    const child = spawn(process.execPath, [distEntry("simulator-runner"), ...args], {
      argv0: "ollama",
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      env: { ...process.env, [RUNNER_CONFIG_ENV]: JSON.stringify(options.config) },
    });
    child.channel?.unref();
    for (const stream of [child.stdout, child.stderr]) {
      if (stream)
        createInterface({ input: stream })
          .on("line", options.onOutput)
          .on("error", () => undefined);
    }
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    return new RunnerHandle(child, port);
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (this.alive) this.child.kill(signal);
  }

  /** Polls /health until the model is loaded; fails if the runner dies or the deadline passes. */
  async waitLoaded(timeoutMs: number, cancelled: () => boolean): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let delay = 10;
    while (performance.now() < deadline) {
      if (this.exit) throw new RunnerTerminatedError(this.exit);
      if (cancelled()) throw new Error("load cancelled");
      if ((await this.call("GET", "/health", undefined, 1000).catch(() => 0)) === 200) return;
      await Promise.race([new Promise((resolve) => setTimeout(resolve, delay)), this.exited]);
      delay = Math.min(delay * 2, 100);
    }
    throw new Error("timed out waiting for llama runner to start");
  }

  async setMode(mode: RunnerMode): Promise<void> {
    await this.call("POST", "/mode", mode, 2000).catch(() => undefined);
  }

  /** Streams a completion; each token goes to onToken. Resolves with the final line. */
  completion(
    body: CompletionRequest,
    onToken: (text: string) => void,
    signal: AbortSignal,
  ): Promise<Extract<CompletionLine, { done: true }>> {
    return new Promise((resolve, reject) => {
      const fail = async () => {
        // A socket error usually arrives before the exit event: wait briefly for Ollama's wording.
        const exit = await Promise.race([this.exited, new Promise<undefined>((r) => setTimeout(r, 1000))]);
        reject(
          exit
            ? new RunnerTerminatedError(exit)
            : new Error("an error was encountered while running the model: unexpected EOF"),
        );
      };
      const req = request(
        { host: "127.0.0.1", port: this.port, method: "POST", path: "/completion", signal },
        (res) => {
          let finished = false;
          const ended = () => {
            if (finished) return;
            finished = true;
            if (signal.aborted) reject(new Error("aborted"));
            else void fail();
          };
          const lines = createInterface({ input: res });
          lines.on("line", (line) => {
            const parsed = JSON.parse(line) as CompletionLine;
            if ("done" in parsed) {
              finished = true;
              resolve(parsed);
            } else onToken(parsed.content);
          });
          // readline re-emits its input's errors; `ended` reports them.
          lines.on("error", ended);
          res.on("error", ended);
          lines.on("close", ended);
        },
      );
      req.on("error", (error: NodeJS.ErrnoException) => {
        if (signal.aborted) reject(new Error("aborted"));
        else if (error.code === "ECONNREFUSED") reject(new RunnerUnreachableError());
        else void fail();
      });
      req.end(JSON.stringify(body));
    });
  }

  private call(method: string, path: string, body: unknown, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port: this.port, method, path, signal: AbortSignal.timeout(timeoutMs) },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }
}
