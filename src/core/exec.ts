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
 * D state cannot be reaped, and must not block the caller).
 */
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
    const finish = (partial: Partial<ExecResult>) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(hardDeadline);
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
    const spawnOptions: SpawnOptions = { stdio: ["ignore", "pipe", "pipe"], env: options.env ?? process.env };
    let child: ReturnType<SpawnFn>;
    try {
      child = spawn(program as string, args, spawnOptions);
    } catch (error) {
      finish({ spawnError: (error as Error).message });
      return;
    }
    const deadline = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 1000).unref();
    }, options.timeoutMs);
    const hardDeadline = setTimeout(() => finish({}), options.timeoutMs + 1500);
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      if (stdout.length < maxOutput) stdout += chunk.slice(0, maxOutput - stdout.length);
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      if (stderr.length < maxOutput) stderr += chunk.slice(0, maxOutput - stderr.length);
    });
    child.on("error", (error) => finish({ spawnError: error.message }));
    child.on("close", (exitCode, signal) => finish({ exitCode, signal }));
  });
}
