import { spawn as nodeSpawn, type SpawnOptions } from "node:child_process";

/** The result of running a program: errors are data, callers branch on fields. */
export interface ExecResult {
  argv: string[];
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The program could not be started (ENOENT, EACCES…). */
  spawnError?: string;
  durationMs: number;
  /**
   * Present when the result came at the hard deadline with the process still there (stuck in D
   * state, deaf to SIGKILL): `exited` settles when it is finally gone.
   */
  lingering?: { pid: number | undefined; exited: Promise<void> };
}

export type SpawnFn = typeof nodeSpawn;

export interface ExecOptions {
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  /** Bytes of stdout/stderr kept (each); the rest is dropped. */
  maxOutput?: number;
  spawn?: SpawnFn;
}

/**
 * Runs argv without a shell under a hard deadline: SIGTERM at the deadline, SIGKILL 1 s later,
 * and the promise settles at the deadline even if the child ignores both (a process stuck in
 * D state cannot be reaped, and must not block the caller). The child leads its own process group
 * and the signals go to the whole group: a hung tool's children (a wrapper script's nvidia-smi, a
 * restart script's docker) die with it instead of piling up. The run ends when the program itself
 * exits (its output read until its pipes close, or for PIPE_GRACE_MS): a process it left in the
 * background holding the pipes (a restart script's `ollama serve &`) neither delays the result
 * nor is killed as part of a hung run.
 */
/** How long output is still read after the program exited, while something else holds its pipes. */
export const PIPE_GRACE_MS = 200;

export function execArgv(argv: string[], options: ExecOptions): Promise<ExecResult> {
  const [program, ...args] = argv;
  const started = performance.now();
  const maxOutput = options.maxOutput ?? 1 << 20;
  const spawn = options.spawn ?? nodeSpawn;
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    let settled = false;
    let timedOut = false;
    // Declared before `finish`, which a synchronous spawn error calls before they are set.
    let deadline: NodeJS.Timeout | undefined;
    let hardDeadline: NodeJS.Timeout | undefined;
    let pipeGrace: NodeJS.Timeout | undefined;
    const finish = (partial: Partial<ExecResult>) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(hardDeadline);
      clearTimeout(pipeGrace);
      resolve({
        argv,
        exitCode: null,
        signal: null,
        stdout,
        stderr,
        timedOut,
        durationMs: performance.now() - started,
        ...partial,
      });
    };
    const spawnOptions: SpawnOptions = {
      stdio: ["ignore", "pipe", "pipe"],
      env: options.env ?? process.env,
      detached: true,
    };
    let child: ReturnType<SpawnFn>;
    try {
      child = spawn(program as string, args, spawnOptions);
    } catch (error) {
      finish({ spawnError: (error as Error).message });
      return;
    }
    let gone = false;
    const exited = new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", () => resolve());
    }).then(() => {
      gone = true;
    });
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid === undefined) throw new Error("no pid");
        process.kill(-child.pid, signal);
      } catch {
        try {
          child.kill(signal);
        } catch {
          // Already gone.
        }
      }
    };
    deadline = setTimeout(() => {
      timedOut = true;
      killGroup("SIGTERM");
      // The whole group, even when the program itself died at SIGTERM: its children may not have.
      setTimeout(() => killGroup("SIGKILL"), 1000).unref();
    }, options.timeoutMs);
    hardDeadline = setTimeout(
      () => finish(gone ? {} : { lingering: { pid: child.pid, exited } }),
      options.timeoutMs + 1500,
    );
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      if (stdout.length < maxOutput) stdout += chunk.slice(0, maxOutput - stdout.length);
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      if (stderr.length < maxOutput) stderr += chunk.slice(0, maxOutput - stderr.length);
    });
    child.on("error", (error) => finish({ spawnError: error.message }));
    child.on("close", (exitCode, signal) => finish({ exitCode, signal }));
    child.on("exit", (exitCode, signal) => {
      clearTimeout(deadline);
      pipeGrace = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish({ exitCode, signal });
      }, PIPE_GRACE_MS);
    });
  });
}
