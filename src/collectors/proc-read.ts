/**
 * Reading procfs off the main path, under a deadline.
 *
 * A read of /proc/<pid>/cmdline (or environ, maps…) takes the process's mmap lock and blocks for
 * as long as a process stuck in D state holds it: forever, on a wedged GPU. Node runs such a read
 * on a libuv pool thread (four by default, shared with every other file operation), so a stuck
 * read costs a thread until the kernel lets go. Every procfs read goes through here:
 * - the caller gets an answer or an error within the deadline;
 * - a path whose earlier read is still stuck is not read again;
 * - once MAX_STUCK_READS reads are stuck, no new procfs read starts at all (the caller fails fast,
 *   and the loop keeps the pool threads it needs for everything else).
 */
import { readdir, readFile, readlink } from "node:fs/promises";

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

export function readProcFile(path: string, deadlineMs = PROC_READ_DEADLINE_MS): Promise<string> {
  return bounded(path, deadlineMs, () => readFile(path, "utf8"));
}

export function readProcDir(path: string, deadlineMs = PROC_READ_DEADLINE_MS): Promise<string[]> {
  return bounded(path, deadlineMs, () => readdir(path));
}

export function readProcLink(path: string, deadlineMs = PROC_READ_DEADLINE_MS): Promise<string> {
  return bounded(path, deadlineMs, () => readlink(path));
}
