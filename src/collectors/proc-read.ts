/**
 * Reading procfs off the main path, under a deadline.
 *
 * A read of /proc/<pid>/cmdline (or environ, maps…) takes the process's mmap lock and blocks for
 * as long as a process stuck in D state holds it: forever, on a wedged GPU. Node would run such a
 * read on a libuv pool thread (four, shared with every other file operation), and a stuck pool
 * thread also blocks the process's exit (libuv joins its threads), so SIGTERM would never finish.
 * Hence:
 * - a read that can block (`readProcFileAside`: the cmdline of a process in D state) runs in a
 *   child process (`head`), which alone stays stuck; the watchdog moves on and can still exit;
 * - every other procfs read opens O_NONBLOCK (a FIFO planted in a procfs tree cannot hang it);
 * - every read answers within its deadline; a path whose earlier read is still stuck is not read
 *   again, and once MAX_STUCK_READS reads are stuck no new one starts (the caller fails fast).
 */
import { close, constants, open, read } from "node:fs";
import { readdir, readlink } from "node:fs/promises";
import { execArgv } from "../core/exec.js";

/** How long one procfs read may take. */
export const PROC_READ_DEADLINE_MS = 1000;
/** Stuck reads tolerated before procfs is left alone (libuv's pool has four threads). */
export const MAX_STUCK_READS = 2;

const stuck = new Set<string>();

export class ProcReadError extends Error {
  readonly code = "ESTUCK";
}

/** The paths whose reads passed their deadline and have not come back. */
export function stuckProcReads(): string[] {
  return [...stuck];
}

async function bounded<T>(path: string, deadlineMs: number, start: () => Promise<T>): Promise<T> {
  if (stuck.has(path)) throw new ProcReadError(`${path}: an earlier read is still stuck`);
  if (stuck.size >= MAX_STUCK_READS) {
    throw new ProcReadError(`procfs reads are stuck (${[...stuck].join(", ")}): not reading ${path}`);
  }
  const work = start();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      stuck.add(path);
      work.then(
        () => stuck.delete(path),
        () => stuck.delete(path),
      );
      reject(new ProcReadError(`${path}: no answer within ${deadlineMs}ms (process in D state?)`));
    }, deadlineMs);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

const NONBLOCKING_READ = constants.O_RDONLY | constants.O_NONBLOCK;
/** A stat or status file fits in one read of this size (a scan reads one per process per tick). */
const READ_CHUNK = 4096;
/** Read buffers kept for reuse: about as many as reads run at once on libuv's pool. */
const SPARE_BUFFERS = 8;
const spareBuffers: Buffer[] = [];

/**
 * open, read until end of file, close — with callbacks, not fs/promises (a third of the CPU: no
 * FileHandle per file) and not fs.readFile: procfs reports size 0, for which readFile allocates a
 * 64 KiB buffer per file that lives until the next garbage collection — with a scan reading every
 * process's stat each tick that was the daemon's largest memory cost (docs/performance.md). Here
 * a 4 KiB buffer is reused, and only the bytes read are kept.
 */
function readWhole(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    open(path, NONBLOCKING_READ, (openError, fd) => {
      if (openError) return reject(openError);
      const buffer = spareBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK);
      const parts: Buffer[] = [];
      const finish = (error: NodeJS.ErrnoException | null) => {
        if (spareBuffers.length < SPARE_BUFFERS) spareBuffers.push(buffer);
        close(fd, () => (error ? reject(error) : resolve(Buffer.concat(parts).toString("utf8"))));
      };
      const next = () =>
        read(fd, buffer, 0, READ_CHUNK, null, (error, bytes) => {
          if (error || bytes === 0) return finish(error);
          parts.push(Buffer.from(buffer.subarray(0, bytes)));
          next();
        });
      next();
    });
  });
}

/** A procfs file's text, under the deadline (opened O_NONBLOCK: a FIFO planted in a tree cannot hang it). */
export function readProcFile(path: string, deadlineMs = PROC_READ_DEADLINE_MS): Promise<string> {
  return bounded(path, deadlineMs, () => readWhole(path));
}

/** Bytes a read aside keeps (a cmdline is at most a few pages). */
const ASIDE_MAX_BYTES = 1 << 20;

/** A read that may block in the kernel, done by a child process (see the top of this file). */
export function readProcFileAside(path: string, deadlineMs = PROC_READ_DEADLINE_MS): Promise<string> {
  return bounded(path, deadlineMs, async () => {
    const result = await execArgv(["head", "-c", String(ASIDE_MAX_BYTES), "--", path], {
      timeoutMs: deadlineMs,
      maxOutput: ASIDE_MAX_BYTES,
    });
    if (result.exitCode !== 0) {
      const why = result.spawnError ?? (result.stderr.trim() || `head exited with ${result.exitCode}`);
      throw Object.assign(new Error(`${path}: ${why}`), {
        code: /No such file/.test(why) ? "ENOENT" : "EIO",
      });
    }
    return result.stdout;
  });
}

export function readProcDir(path: string, deadlineMs = PROC_READ_DEADLINE_MS): Promise<string[]> {
  return bounded(path, deadlineMs, () => readdir(path));
}

export function readProcLink(path: string, deadlineMs = PROC_READ_DEADLINE_MS): Promise<string> {
  return bounded(path, deadlineMs, () => readlink(path));
}
