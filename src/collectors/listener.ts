/**
 * Which process is the target's own server: the one that listens on the target's port.
 *
 * Proof, in order:
 * 1. The listening socket (LISTEN, the target's port) in the candidate's own network namespace
 *    (`<procRoot>/<pid>/net/tcp{,6}`), and its inode among the candidate's open files
 *    (`<procRoot>/<pid>/fd/* -> socket:[inode]`). Reading another user's fds needs ptrace access,
 *    which the installed watchdog (its own user, CAP_KILL only) does not have; then:
 * 2. the socket's owner uid is the candidate's uid, and no other candidate of that uid shares the
 *    namespace. Two servers of one user in one namespace cannot be told apart that way: not proven.
 */
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { readProcDir, readProcFile, readProcLink } from "./proc-read.js";

export interface ListeningSocket {
  port: number;
  inode: string;
  uid: number;
}

const TCP_LISTEN = "0A";

/** The LISTEN sockets of a /proc/net/tcp or tcp6 table. */
export function parseListeningSockets(text: string): ListeningSocket[] {
  const sockets: ListeningSocket[] = [];
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || fields[3] !== TCP_LISTEN) continue;
    const port = Number.parseInt(fields[1]?.split(":").pop() ?? "", 16);
    const uid = Number(fields[7]);
    const inode = fields[9] ?? "";
    if (Number.isInteger(port) && Number.isInteger(uid) && /^\d+$/.test(inode) && inode !== "0") {
      sockets.push({ port, inode, uid });
    }
  }
  return sockets;
}

/** Where a target's server runs, as far as its URL tells. */
export type Placement = { local: true; port: number } | { local: false; host: string };

/** Loopback names and this host's own addresses are local; anything else is remote. */
export function placementOf(url: string, ownAddresses: () => string[] = hostAddresses): Placement {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const port = Number(parsed.port || (parsed.protocol === "https:" ? 443 : 80));
  const loopback = host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
  if (loopback || host === "0.0.0.0" || host === "::" || ownAddresses().includes(host))
    return { local: true, port };
  return { local: false, host };
}

function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .flatMap((address) => (address ? [address.address.toLowerCase()] : []));
}

/** The LISTEN sockets on `port` in the network namespace of `pid`. */
export async function listenersOn(procRoot: string, pid: number, port: number): Promise<ListeningSocket[]> {
  const tables = await Promise.all(
    ["tcp", "tcp6"].map((table) => readProcFile(join(procRoot, String(pid), "net", table)).catch(() => "")),
  );
  return tables.flatMap(parseListeningSockets).filter((socket) => socket.port === port);
}

/** Whether `pid` holds one of the sockets; "unreadable" when its fds cannot be listed (no ptrace access). */
export async function holdsSocket(
  procRoot: string,
  pid: number,
  inodes: ReadonlySet<string>,
): Promise<boolean | "unreadable"> {
  const fdDir = join(procRoot, String(pid), "fd");
  let fds: string[];
  try {
    fds = await readProcDir(fdDir);
  } catch {
    return "unreadable";
  }
  for (const fd of fds) {
    const link = await readProcLink(join(fdDir, fd)).catch(() => "");
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    if (inode && inodes.has(inode)) return true;
  }
  return false;
}

/** The real uid from /proc/<pid>/status ("Uid: real effective saved fs"). */
export function parseStatusUid(text: string): number | undefined {
  const match = /^Uid:\s*(\d+)/m.exec(text);
  return match ? Number(match[1]) : undefined;
}
