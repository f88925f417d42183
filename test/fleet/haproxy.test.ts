import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postArgv } from "../../src/simulator/supervisor.js";
import { CLI, ROOT } from "../support/paths.js";
import { MODEL } from "../support/scenario.js";
import { waitFor } from "../support/wait.js";
import {
  createTopology,
  firstChild,
  haproxyCommand,
  Processes,
  parseServerStatus,
  requireTools,
  sweepStaleNamespaces,
  type Topology,
  unixRequest,
  waitForLog,
} from "./netns.js";

/**
 * Three Ollama hosts (simulator + watchdog, each in its own network and PID namespace) behind the
 * real HAProxy configured by deploy/haproxy/haproxy.cfg; clients stream without pause; one host's
 * runner deadlocks. The detection timings are the defaults / SCALE (ratios kept, as in
 * test/support/scenario.ts but at 1/20: seven processes share the machine with the rest of the
 * suite, and at 1/40 a loaded machine delayed a healthy host's canary past its timeout), the
 * HAProxy check interval too, so those figures × SCALE are the figures at the defaults. Deadlines
 * that are not measured (API timeout, grace periods, verification) are generous.
 */
const SCALE = 20;
const TIMINGS = {
  interval: "750ms",
  detection: {
    apiTimeout: "1s",
    downAfter: 3,
    freezeAfter: "3s",
    startupGrace: "1s",
    loadGrace: "3s",
    // After the restart the verification canary loads the model itself (no traffic reaches a host
    // out of rotation); it waits loadGrace + canary.timeout (src/detector/canaries.ts).
    canary: { every: "3s", timeout: "1500ms" },
  },
};
const CHECK_INTER_MS = 2000 / SCALE;
const DRAIN_FOR_MS = 10_000 / SCALE;
const CLIENTS = 4;
/** A generation of 20 tokens at 10 ms a token: 200 ms here, 8 s at full scale. */
const TOKENS = 20;
/**
 * A client's patience between two chunks: long, like a real client's. A request on the frozen
 * model ends when the restart closes its connection, not by this deadline.
 */
const IDLE_DEADLINE_MS = 20_000;

interface ClientRequest {
  id: string;
  start: number;
  end?: number;
  server?: string;
  ok?: boolean;
  error?: string;
}

interface Timeline {
  freeze: number;
  /** The frozen host's watchdog answered 503 on /targets/default/health. */
  unhealthy?: number;
  /** HAProxy had marked the frozen host DOWN by then (its answer saying so came back): no new requests from here on. */
  drained?: number;
  /** The watchdog issued the restart (state recovering). */
  restart?: number;
  /** The watchdog verified the heal (healthy). */
  healed?: number;
  /** HAProxy had marked the host UP again by then. */
  back?: number;
  /** HAProxy still had the host out of rotation then (the last "not UP" answer was asked for). */
  outUntil?: number;
}

let topology: Topology | undefined;
const processes = new Processes();
let work = "";

const sock = (name: string) => join(work, `${name}.sock`);

/** deploy/haproxy/haproxy.cfg with the test's sockets, addresses and the scaled check interval. */
function haproxyConfig(hosts: Topology["hosts"]): string {
  const recipe = readFileSync(join(ROOT, "deploy/haproxy/haproxy.cfg"), "utf8");
  const servers = hosts.map((h) => `    server ${h.name} ${h.address}:11434`).join("\n");
  let config = recipe
    .replace(/stats socket \S+/, `stats socket ${sock("admin")}`)
    // Each request's server from HAProxy's log, also for those that never got response headers.
    .replace(/bind :11434/, `bind ${sock("lb")}\n    capture request header X-Client-Id len 16`)
    .replace(/^(\s*default-server .*)inter 2s/m, `$1inter ${CHECK_INTER_MS}ms`)
    .replace(/(\n\s*server \S+ \S+)+/, `\n${servers}`);
  expect(config).toContain(`inter ${CHECK_INTER_MS}ms fall 2 rise 2`);
  expect(config).toContain("uri /targets/default/health");
  // Test plumbing only: a direct line from this process to each host's simulator and watchdog.
  for (const h of hosts) {
    for (const [kind, port] of [
      ["sim", 11434],
      ["wd", 11464],
    ] as const) {
      config += `\nfrontend ${kind}-${h.name}\n    bind ${sock(`${kind}-${h.name}`)}\n    default_backend ${kind}-${h.name}\n`;
      config += `backend ${kind}-${h.name}\n    server ${h.name} ${h.address}:${port}\n`;
    }
  }
  return config;
}

function watchdogConfig(dir: string, simDir: string): Record<string, unknown> {
  return {
    ...TIMINGS,
    listen: "0.0.0.0:11464",
    stateDir: join(dir, "state"),
    targets: [
      {
        name: "default",
        url: "http://127.0.0.1:11434",
        restart: { command: { argv: postArgv("http://127.0.0.1:11434/_sim/restart"), timeout: "20s" } },
      },
    ],
    // Restart straight away (no kill-runner first) so that the drain before it is exercised.
    // verifyWithin is a deadline, not a measured figure: generous, because the restart command is
    // a fresh Node process (slow to start on a loaded machine).
    remediation: {
      cooldown: "3s",
      ladder: ["restart"],
      drainFor: `${DRAIN_FOR_MS}ms`,
      verifyWithin: "30s",
    },
    gpu: { backend: "nvidia", nvidiaSmi: join(simDir, "bin", "nvidia-smi"), timeout: "1s" },
  };
}

async function startHost(host: Topology["hosts"][number]): Promise<void> {
  const dir = join(work, host.name);
  const simDir = join(dir, "sim");
  mkdirSync(simDir, { recursive: true });
  const simLog = join(dir, "simulator.log");
  const unshare = processes.start(
    [
      "/usr/sbin/ip",
      "netns",
      "exec",
      host.ns,
      "/usr/bin/unshare",
      "--pid",
      "--fork",
      "--kill-child",
      "--mount-proc",
      process.execPath,
      CLI,
      "simulate",
      "--host",
      "0.0.0.0",
      "--port",
      "11434",
      "--state-dir",
      simDir,
    ],
    simLog,
    {
      ...process.env,
      OLLAMA_NUM_PARALLEL: "4",
      OLLAMA_SIM_TIMING: JSON.stringify({ tokenIntervalMs: 10, loadMs: 100 }),
    },
  );
  await waitForLog(simLog, /simulator listening/);
  const simPid = await waitFor(() => firstChild(unshare.pid as number), { what: "the simulator's pid" });
  const configFile = join(dir, "config.json");
  writeFileSync(configFile, JSON.stringify(watchdogConfig(dir, simDir)));
  // The watchdog joins the simulator's namespaces: it sees that host's /proc and network only.
  processes.start(
    [
      "/usr/bin/nsenter",
      "-t",
      String(simPid),
      "--pid",
      "--mount",
      "--net",
      process.execPath,
      CLI,
      "run",
      "--config",
      configFile,
    ],
    join(dir, "watchdog.log"),
  );
}

/** Fills in each request's server from HAProxy's log ("ollama/h2 … {c17}"); true when all have one. */
function attributeServers(requests: ClientRequest[]): boolean {
  const log = readFileSync(join(work, "haproxy.log"), "utf8");
  const byId = new Map<string, string>();
  for (const match of log.matchAll(/ ollama\/(\S+) .*?\{(c\d+)\}/g))
    byId.set(match[2] as string, match[1] as string);
  for (const r of requests) r.server ??= byId.get(r.id);
  return requests.every((r) => r.server !== undefined);
}

async function serverStatus(): Promise<Map<string, string>> {
  return parseServerStatus(await haproxyCommand(sock("admin"), "show stat"), "ollama");
}

async function watchdogState(host: string): Promise<{ state?: string; reason?: string }> {
  const res = await unixRequest(sock(`wd-${host}`), "GET", "/api/status", undefined, 1000);
  return (JSON.parse(res.body) as { targets: Array<{ state: string; reason: string }> }).targets[0] ?? {};
}

/** One streamed generation through HAProxy; fails on an error status or a stall. */
function generate(record: ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const payload = JSON.stringify({ model: MODEL, prompt: "hello", options: { num_predict: TOKENS } });
    let settled = false;
    const finish = (ok: boolean, error?: string) => {
      if (settled) return;
      settled = true;
      record.end = performance.now();
      record.ok = ok;
      if (error) record.error = error;
      resolve();
    };
    const req = request(
      {
        socketPath: sock("lb"),
        method: "POST",
        path: "/api/generate",
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
          "x-client-id": record.id,
        },
        timeout: IDLE_DEADLINE_MS,
      },
      (res) => {
        const servedBy = res.headers["x-served-by"];
        if (typeof servedBy === "string") record.server = servedBy;
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => {
          const done = text.trim().split("\n").at(-1)?.includes('"done":true');
          finish(
            res.statusCode === 200 && Boolean(done),
            done ? undefined : `status ${res.statusCode}, no done`,
          );
        });
        res.on("error", (error) => finish(false, error.message));
        res.on("aborted", () => finish(false, "aborted"));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`stalled ${IDLE_DEADLINE_MS}ms`)));
    req.on("error", (error) => finish(false, error.message));
    req.end(payload);
  });
}

describe("fleet: three hosts behind HAProxy, one freezes", () => {
  beforeAll(async () => {
    requireTools();
    sweepStaleNamespaces();
    work = mkdtempSync(join(tmpdir(), "owd-fleet-"));
    topology = createTopology(3);
    await Promise.all(topology.hosts.map((h) => startHost(h)));
    writeFileSync(join(work, "haproxy.cfg"), haproxyConfig(topology.hosts));
    writeFileSync(join(work, "none.yaml"), "{}\n");
    processes.start(
      [
        "/usr/sbin/ip",
        "netns",
        "exec",
        topology.lb,
        "/usr/sbin/haproxy",
        "-db",
        "-f",
        join(work, "haproxy.cfg"),
      ],
      join(work, "haproxy.log"),
    );
  }, 60_000);

  afterAll(async () => {
    await processes.killAll();
    topology?.remove();
    if (work && !process.env.OWD_KEEP_FLEET_LOGS) rmSync(work, { recursive: true, force: true });
  });

  it("drains the frozen host before its restart, loses no request started after the drain, takes it back once healed", async () => {
    const hosts = (topology as Topology).hosts.map((h) => h.name);
    await waitFor(async () => [...(await serverStatus()).values()].every((s) => s === "UP"), {
      timeoutMs: 20_000,
      what: "HAProxy sees every host UP",
    });
    // Load the model on every host, then let the watchdogs settle (startup and load grace).
    for (const host of hosts) {
      await unixRequest(
        sock(`sim-${host}`),
        "POST",
        "/api/generate",
        {
          model: MODEL,
          prompt: "hi",
          stream: false,
          keep_alive: "30m",
        },
        15_000,
      );
    }
    await waitFor(
      async () => (await Promise.all(hosts.map(watchdogState))).every((s) => s.state === "healthy"),
      {
        timeoutMs: 20_000,
        what: "every watchdog healthy",
      },
    );

    const requests: ClientRequest[] = [];
    let running = true;
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (running) {
        const record: ClientRequest = { id: `c${requests.length}`, start: performance.now() };
        requests.push(record);
        await generate(record);
      }
    });
    // Every host serves before the freeze.
    await waitFor(() => hosts.every((h) => requests.some((r) => r.server === h && r.ok)), {
      timeoutMs: 10_000,
      what: "requests served by every host",
    });

    const frozen = "h2";
    await unixRequest(sock(`sim-${frozen}`), "POST", "/_sim/fault", { name: "runner-deadlock" });
    const t: Timeline = { freeze: performance.now() };
    // Each figure is stamped on the side that makes the assertions below safe: HAProxy's state can
    // change while a query is under way, so "DOWN" counts from when its answer came back and
    // "still out" up to when the last other answer was asked for.
    let notUpAskedAt = 0;
    await waitFor(
      async () => {
        const now = performance.now();
        const { state, reason } = await watchdogState(frozen).catch(() => ({
          state: undefined,
          reason: undefined,
        }));
        if (t.unhealthy === undefined && state && state !== "healthy" && state !== "starting")
          t.unhealthy = now;
        if (t.restart === undefined && (state === "recovering" || /→ restart/.test(reason ?? "")))
          t.restart = now;
        if (t.restart !== undefined && t.healed === undefined && state === "healthy") t.healed = now;
        const askedAt = performance.now();
        const status = (await serverStatus()).get(frozen) ?? "";
        const answeredAt = performance.now();
        if (t.drained === undefined && status.startsWith("DOWN")) t.drained = answeredAt;
        if (status !== "UP") notUpAskedAt = askedAt;
        else if (t.healed !== undefined && t.back === undefined) {
          t.back = answeredAt;
          t.outUntil = notUpAskedAt;
        }
        return t.back !== undefined;
      },
      { timeoutMs: 60_000, everyMs: 10, what: `${frozen} frozen, drained, healed and back in rotation` },
    );
    // Traffic reaches the healed host again.
    const back = t.back as number;
    await waitFor(() => requests.some((r) => r.server === frozen && r.start > back && r.ok), {
      timeoutMs: 10_000,
      what: `a request served by ${frozen} after it is back`,
    });
    running = false;
    await Promise.all(clients);
    // HAProxy logs a request when it ends; one cut by the restart may never get a line.
    await waitFor(() => attributeServers(requests), { timeoutMs: 3000 }).catch(() => undefined);

    const drained = t.drained as number;
    const errors = requests.filter((r) => r.ok === false);
    const inFlightAtFreeze = errors.filter((r) => r.start < t.freeze);
    const beforeDrain = errors.filter((r) => r.start >= t.freeze && r.start < drained);
    const afterDrain = errors.filter((r) => r.start >= drained);
    // HAProxy chose the server between a request's start and end: sent to the frozen host while
    // it was certainly out of rotation.
    const outUntil = t.outUntil as number;
    const toFrozenWhileOut = requests.filter(
      (r) => r.server === frozen && r.start >= drained && (r.end as number) <= outUntil,
    );
    const figures = {
      requests: requests.length,
      freezeToUnhealthyMs: Math.round((t.unhealthy as number) - t.freeze),
      freezeToDrainedMs: Math.round(drained - t.freeze),
      drainedToRestartMs: Math.round((t.restart as number) - drained),
      freezeToHealedMs: Math.round((t.healed as number) - t.freeze),
      healedToBackMs: Math.round(back - (t.healed as number)),
      freezeToBackMs: Math.round(back - t.freeze),
      errorsInFlightAtFreeze: inFlightAtFreeze.length,
      errorsStartedBeforeDrain: beforeDrain.length,
      errorsStartedAfterDrain: afterDrain.length,
      errorReasons: [...new Set(errors.map((e) => `${e.server ?? "?"}: ${e.error}`))],
      requestsWithoutLogLine: requests.filter((r) => !r.server).length,
    };
    process.stdout.write(`fleet figures (scaled 1/${SCALE}): ${JSON.stringify(figures)}\n`);

    expect(t.unhealthy).toBeDefined();
    expect(drained).toBeGreaterThanOrEqual(t.unhealthy as number);
    // The drain did its job: HAProxy had taken the host out before the restart dropped its models.
    expect(t.restart).toBeGreaterThan(drained);
    expect(toFrozenWhileOut).toEqual([]);
    expect(afterDrain).toEqual([]);
    // Only requests that HAProxy had sent to the frozen host may fail (a request without a log
    // line started before the drain, where it may have gone to the frozen host).
    expect(errors.filter((e) => e.server !== undefined && e.server !== frozen)).toEqual([]);
    expect(requests.filter((r) => r.server === undefined && r.start >= drained)).toEqual([]);
  }, 90_000);

  it("status --url … from the load balancer's network: one line per host, exit 0 when all are healthy", async () => {
    const lb = (topology as Topology).lb;
    const urls = (topology as Topology).hosts.flatMap((h) => ["--url", `http://${h.address}:11464`]);
    const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(
        "/usr/sbin/ip",
        ["netns", "exec", lb, process.execPath, CLI, "status", "--config", join(work, "none.yaml"), ...urls],
        { timeout: 30_000 },
        (error, out) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout: out }),
      ),
    );
    const lines = stdout.trim().split("\n");
    expect(lines, stdout).toHaveLength(4);
    expect(
      lines.slice(1).every((line) => /^10\.231\.\d\.2\s+healthy\s+\d\/3/.test(line)),
      stdout,
    ).toBe(true);
    expect(code).toBe(0);
  }, 40_000);
});
