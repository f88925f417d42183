/**
 * The server's side of one runner process: spawn it with an Ollama-like command line, wait for it
 * to load, stream completions from it, change its mode, kill it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { request } from "node:http";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { distEntry } from "./dist-paths.js";
import { type OllamaProfile, runnerArgs } from "./profiles.js";
import {
  type CompletionLine,
  type CompletionRequest,
  RUNNER_CONFIG_ENV,
  RUNNER_PROGRAM_ENV,
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

/** A load that failed, in the profile's words ("llama runner process has terminated: signal: killed"). */
export class LoadFailedError extends Error {}

/** The request never reached the runner: it had already died. */
export class RunnerUnreachableError extends Error {}

/** Ollama's error when a runner's stream breaks off (llm/server.go, every profile). */
export const STREAM_BROKE_MESSAGE = "an error was encountered while running the model: unexpected EOF";

/** The title is written over the original argv, so the original must be at least as long: pad it. */
export const TITLE_PADDING = `--sim-title-room=${"x".repeat(96)}`;

export async function freePort(): Promise<number> {
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
    /** The command line as `ps` shows it (and as Ollama logs it in "starting runner"). */
    readonly commandLine: string,
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
    profile: OllamaProfile;
    blobPath: string;
    numCtx: number;
    numParallel: number;
    config: RunnerConfig;
    /** Each line the runner writes to stdout/stderr (Ollama copies them into its log). */
    onOutput: (line: string) => void;
  }): Promise<RunnerHandle> {
    const port = await freePort();
    const args = runnerArgs(options.profile, { ...options, port });
    const program = options.profile.runner.program;
    const child = spawn(process.execPath, [distEntry("simulator-runner"), ...args, TITLE_PADDING], {
      argv0: program,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      env: {
        ...process.env,
        [RUNNER_CONFIG_ENV]: JSON.stringify(options.config),
        [RUNNER_PROGRAM_ENV]: program,
      },
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
    return new RunnerHandle(child, port, [program, ...args].join(" "));
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (this.alive) this.child.kill(signal);
  }

  /**
   * WaitUntilRunning: polls /health until the model is loaded. Fails, in the profile's words, when
   * the runner dies, the deadline passes, or the requesting client goes away (the load runs under
   * its context).
   */
  async waitLoaded(options: {
    timeoutMs: number;
    cancelled: () => boolean;
    clientSignal: AbortSignal;
    wording: OllamaProfile["wording"];
  }): Promise<void> {
    const { wording, clientSignal } = options;
    const deadline = performance.now() + options.timeoutMs;
    // One abort listener for the whole wait, removed at the end: a slow load polls many times.
    let wakeOnAbort: () => void = () => undefined;
    const aborted = new Promise<void>((resolve) => {
      wakeOnAbort = resolve;
    });
    clientSignal.addEventListener("abort", wakeOnAbort, { once: true });
    let delay = 10;
    try {
      while (performance.now() < deadline) {
        if (clientSignal.aborted) throw new LoadFailedError(`${wording.loadTimedOut}: context canceled`);
        if (this.exit) throw new LoadFailedError(`${wording.terminated}: ${this.exit.description}`);
        if (options.cancelled()) throw new Error("load cancelled");
        if ((await this.call("GET", "/health", undefined, 1000).catch(() => 0)) === 200) return;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise((resolve) => {
            timer = setTimeout(resolve, delay);
          }),
          this.exited,
          aborted,
        ]);
        clearTimeout(timer);
        delay = Math.min(delay * 2, 100);
      }
    } finally {
      clientSignal.removeEventListener("abort", wakeOnAbort);
    }
    throw new LoadFailedError(`${wording.loadTimedOut} - progress 0.00 - `);
  }

  /** needsReload's Ping: true when /health answers within the deadline; a client that leaves ends it. */
  async ping(timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    if (!this.alive) return false;
    const status = await this.call("GET", "/health", undefined, timeoutMs, signal).catch(() => 0);
    return status === 200;
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
      const fail = () => reject(new Error(STREAM_BROKE_MESSAGE));
      const req = request(
        { host: "127.0.0.1", port: this.port, method: "POST", path: "/completion", signal },
        (res) => {
          let finished = false;
          const ended = () => {
            if (finished) return;
            finished = true;
            if (signal.aborted) reject(new Error("aborted"));
            else fail();
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
        else fail();
      });
      req.end(JSON.stringify(body));
    });
  }

  private call(
    method: string,
    path: string,
    body: unknown,
    timeoutMs: number,
    cancel?: AbortSignal,
  ): Promise<number> {
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = cancel ? AbortSignal.any([deadline, cancel]) : deadline;
    return new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: this.port, method, path, signal }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }
}
