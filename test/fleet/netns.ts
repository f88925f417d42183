import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, openSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { createConnection } from "node:net";
import { waitFor } from "../support/wait.js";

/**
 * Several "hosts" on one machine: each a network namespace (veth to a load-balancer namespace,
 * addresses in 10.231.0.0/16 that exist only inside these namespaces) and a PID namespace of its
 * own, so each watchdog sees only its own Ollama's processes, as on a real host. Nothing here
 * touches the root namespace's interfaces or any outside address.
 */

export const NS_PREFIX = "owf";

/** Commands a fleet test needs; a missing one is a failed precondition, not a skip. */
export function requireTools(): void {
  if (process.getuid?.() !== 0) throw new Error("the fleet test needs root (ip netns, unshare)");
  for (const tool of ["/usr/sbin/ip", "/usr/bin/unshare", "/usr/bin/nsenter", "/usr/sbin/haproxy"]) {
    if (!existsSync(tool))
      throw new Error(`the fleet test needs ${tool} (apt-get install iproute2 util-linux haproxy)`);
  }
}

function ip(args: string[]): void {
  execFileSync("/usr/sbin/ip", args, { stdio: ["ignore", "ignore", "pipe"], timeout: 10_000 });
}

/** Deletes namespaces left by an earlier run whose test process is gone (a crash, a kill -9). */
export function sweepStaleNamespaces(): void {
  const listed = execFileSync("/usr/sbin/ip", ["netns", "list"], { encoding: "utf8", timeout: 10_000 });
  for (const line of listed.split("\n")) {
    const match = new RegExp(`^(${NS_PREFIX}(\\d+)-\\S+)`).exec(line);
    if (!match) continue;
    const pid = Number(match[2]);
    if (pid !== process.pid && !existsSync(`/proc/${pid}`)) ip(["netns", "del", match[1] as string]);
  }
}

export interface Topology {
  lb: string;
  hosts: Array<{ name: string; ns: string; address: string }>;
  /** Removes every namespace (their veths go with them). Idempotent. */
  remove(): void;
}

/** One load-balancer namespace and `count` host namespaces, each linked to it by a veth pair. */
export function createTopology(count: number): Topology {
  const id = `${NS_PREFIX}${process.pid}`;
  const created: string[] = [];
  const topology: Topology = {
    lb: `${id}-lb`,
    hosts: [],
    remove() {
      for (const ns of created.splice(0).reverse()) {
        try {
          ip(["netns", "del", ns]);
        } catch {
          // already gone
        }
      }
    },
  };
  try {
    ip(["netns", "add", topology.lb]);
    created.push(topology.lb);
    ip(["-n", topology.lb, "link", "set", "lo", "up"]);
    for (let i = 1; i <= count; i++) {
      const ns = `${id}-h${i}`;
      ip(["netns", "add", ns]);
      created.push(ns);
      const lbSide = `${id}l${i}`.slice(-15);
      ip([
        "link",
        "add",
        "name",
        lbSide,
        "netns",
        topology.lb,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns,
      ]);
      ip(["-n", topology.lb, "addr", "add", `10.231.${i}.1/24`, "dev", lbSide]);
      ip(["-n", ns, "addr", "add", `10.231.${i}.2/24`, "dev", "eth0"]);
      ip(["-n", topology.lb, "link", "set", lbSide, "up"]);
      ip(["-n", ns, "link", "set", "eth0", "up"]);
      ip(["-n", ns, "link", "set", "lo", "up"]);
      topology.hosts.push({ name: `h${i}`, ns, address: `10.231.${i}.2` });
    }
  } catch (error) {
    topology.remove();
    throw error;
  }
  return topology;
}

/** Processes started for a test: each in its own process group, all killed by `killAll`. */
export class Processes {
  private readonly children: ChildProcess[] = [];

  start(argv: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const log = openSync(logFile, "a");
    const child = spawn(argv[0] as string, argv.slice(1), {
      stdio: ["ignore", log, log],
      detached: true,
      env,
    });
    this.children.push(child);
    return child;
  }

  /** SIGKILL to every group; the PID namespaces' init processes take their namespaces down. */
  async killAll(): Promise<void> {
    const alive = this.children.splice(0).filter((c) => c.exitCode === null && c.signalCode === null);
    for (const child of alive) {
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {
        // gone already
      }
    }
    await Promise.all(
      alive.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) resolve();
            else child.once("exit", () => resolve());
          }),
      ),
    );
  }
}

/** The first child of `pid` (unshare --fork's child: PID 1 of the new namespace). */
export function firstChild(pid: number): number | undefined {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/);
    const first = Number(children[0]);
    return Number.isInteger(first) && first > 0 ? first : undefined;
  } catch {
    return undefined;
  }
}

export async function waitForLog(file: string, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  return waitFor(
    () => {
      const text = existsSync(file) ? readFileSync(file, "utf8") : "";
      return pattern.exec(text)?.[0];
    },
    { timeoutMs, what: `${pattern} in ${file}` },
  );
}

export interface UnixResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request over a unix socket (how the test reaches into the namespaces), with a deadline. */
export function unixRequest(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 2000,
): Promise<UnixResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method,
        path,
        timeout: timeoutMs,
        headers: payload
          ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }
          : {},
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs}ms`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** One command on HAProxy's stats socket, with a deadline. */
export function haproxyCommand(socketPath: string, command: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let text = "";
    socket.setEncoding("utf8");
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`haproxy "${command}": no answer`)));
    socket.on("connect", () => socket.write(`${command}\n`));
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("end", () => resolve(text));
    socket.on("error", reject);
  });
}

/** `show stat` → server name → its row (column name → cell) for one backend. */
export function parseServerStats(csv: string, backend: string): Map<string, Record<string, string>> {
  const [header, ...rows] = csv.trim().split("\n");
  const columns = (header ?? "").replace(/^# /, "").split(",");
  const result = new Map<string, Record<string, string>>();
  for (const row of rows) {
    const cells = row.split(",");
    const stats = Object.fromEntries(columns.map((column, i) => [column, cells[i] ?? ""]));
    const server = stats.svname;
    if (stats.pxname === backend && server && server !== "FRONTEND" && server !== "BACKEND") {
      result.set(server, stats);
    }
  }
  return result;
}

/** `show stat` → server name → status ("UP", "DOWN", "UP 1/2", …) for one backend. */
export function parseServerStatus(csv: string, backend: string): Map<string, string> {
  return new Map([...parseServerStats(csv, backend)].map(([server, stats]) => [server, stats.status ?? ""]));
}
