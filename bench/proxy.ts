/**
 * `npm run bench:proxy` = `node dist/bench/proxy.js [--requests 3000] [--seconds 3] [--streams 1000] [--json FILE]`
 *
 * What the stall guard adds to a request, side by side with nginx (`proxy_buffering off`) and with
 * no proxy at all, in front of a fast upstream stub (so the proxy is measured, not a simulated
 * model). Stub, stall guard and nginx each run in their own process; this process is the client.
 *   1. Added time to first byte, p50 / p99, at 1, 16 and 64 concurrent streams (NDJSON answers of
 *      five chunks; the paths take turns in rounds so drift hits all alike).
 *   2. Streamed chunks per second: the stub writes one NDJSON line per event-loop turn (like
 *      Ollama's one write per token), 1 stream and 16 at once.
 *   3. Requests per second on a small endpoint (GET /api/version, 64 keep-alive connections).
 *   4. Memory per open stream: RSS growth of the proxy process(es) with --streams streams open.
 * nginx is optional: without /usr/sbin/nginx its column is left out (Debian package `nginx`).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../src/core/log.js";
import { StallGuard } from "../src/proxy/server.js";
import { childPids, sampleProcess } from "./lib/proc.js";
import { fixed, markdownTable } from "./lib/stats.js";

const SELF = fileURLToPath(import.meta.url);
const NGINX = "/usr/sbin/nginx";
const CHUNK = '{"model":"bench","created_at":"2026-01-01T00:00:00Z","response":"tok","done":false}\n';
const LAST = '{"model":"bench","response":"","done":true,"eval_count":4,"prompt_eval_count":3}\n';

// --- roles that run in their own process ---

/** The fast upstream: answers at once, streams as told, holds streams open on request. */
function runStub(): void {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://stub");
    if (req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
      return void res.end('{"version":"0.12.5"}');
    }
    req.resume();
    req.on("end", () => {
      const chunks = Number(url.searchParams.get("chunks") ?? 4);
      const hold = url.searchParams.has("hold");
      res.socket?.setNoDelay(true);
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      if (hold) return void res.write(CHUNK);
      if (chunks <= 4) {
        for (let i = 0; i < chunks; i++) res.write(CHUNK);
        return void res.end(LAST);
      }
      let sent = 0;
      const next = () => {
        if (sent === chunks) return void res.end(LAST);
        sent++;
        if (res.write(CHUNK)) setImmediate(next);
        else res.once("drain", next);
      };
      next();
    });
  });
  server.listen(0, "127.0.0.1", () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
}

async function runGuard(upstream: string): Promise<void> {
  const guard = await StallGuard.start({
    target: "bench",
    upstream,
    listen: "127.0.0.1:0",
    holdForMs: 60_000,
    maxTokenGapMs: null,
    log: silentLogger(),
  });
  // A clean exit on SIGINT, so `node --cpu-prof` writes its profile.
  process.once("SIGINT", () => void guard.close().then(() => process.exit(0)));
  process.stdout.write(`${JSON.stringify({ url: guard.url })}\n`);
}

// --- the client ---

interface Options {
  requests: number;
  seconds: number;
  streams: number;
  json?: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { requests: 3000, seconds: 3, streams: 1000 };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === "--requests") options.requests = Number(value);
    else if (argv[i] === "--seconds") options.seconds = Number(value);
    else if (argv[i] === "--streams") options.streams = Number(value);
    else if (argv[i] === "--json" && value) options.json = value;
    else continue;
    i++;
  }
  return options;
}

function spawnRole(args: string[]): Promise<{ child: ChildProcess; info: Record<string, unknown> }> {
  const child = spawn(process.execPath, [SELF, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      const line = out.split("\n")[0];
      if (out.includes("\n") && line) resolve({ child, info: JSON.parse(line) as Record<string, unknown> });
    });
    child.once("exit", (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function startNginx(
  upstreamPort: number,
): Promise<{ child: ChildProcess; url: string; dir: string } | undefined> {
  if (!existsSync(NGINX)) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "owd-bench-nginx-"));
  chmodSync(dir, 0o777);
  for (const sub of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, sub), { mode: 0o777 });
  const port = await freePort();
  const conf = join(dir, "nginx.conf");
  writeFileSync(
    conf,
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream ollama { server 127.0.0.1:${upstreamPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://ollama;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
    }
  }
}
`,
  );
  const child = spawn(NGINX, ["-c", conf, "-p", dir, "-g", "daemon off;"], { stdio: "inherit" });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await get(url, "/api/version").catch(() => false)) return { child, url, dir };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill();
  throw new Error("nginx did not start");
}

function get(url: string, path: string, agent?: Agent): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { agent }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200));
    });
    req.on("error", reject);
    req.end();
  });
}

/** One streamed generation: ms to the first body byte, and chunks (lines) received. */
function stream(url: string, query: string, agent: Agent): Promise<{ ttfbMs: number; lines: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let ttfbMs = -1;
    let lines = 0;
    const req = request(`${url}/api/generate${query}`, { method: "POST", agent }, (res) => {
      res.on("data", (chunk: Buffer) => {
        if (ttfbMs < 0) ttfbMs = performance.now() - started;
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      });
      res.on("end", () => resolve({ ttfbMs, lines }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end('{"model":"bench","prompt":"hi"}');
  });
}

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

interface Path {
  name: string;
  url: string;
  pids: () => number[];
}

async function ttfbRound(path: Path, concurrency: number, requests: number, agent: Agent): Promise<number[]> {
  const samples: number[] = [];
  let left = requests;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left-- > 0) samples.push((await stream(path.url, "?chunks=4", agent)).ttfbMs);
    }),
  );
  return samples;
}

async function chunkRate(path: Path, streams: number, chunksEach: number): Promise<number> {
  const agent = new Agent({ keepAlive: true });
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: streams }, () => stream(path.url, `?chunks=${chunksEach}`, agent)),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return results.reduce((sum, r) => sum + r.lines, 0) / seconds;
}

async function requestRate(path: Path, seconds: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const deadline = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() < deadline) {
        await get(path.url, "/api/version", agent);
        done++;
      }
    }),
  );
  agent.destroy();
  return done / seconds;
}

async function memoryPerStream(path: Path, streams: number): Promise<number> {
  const rss = () => path.pids().reduce((sum, pid) => sum + sampleProcess(pid).rssBytes, 0);
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const before = rss();
  const open: ReturnType<typeof request>[] = [];
  await Promise.all(
    Array.from(
      { length: streams },
      () =>
        new Promise<void>((resolve, reject) => {
          const req = request(`${path.url}/api/generate?hold`, { method: "POST", agent }, (res) => {
            res.once("data", () => resolve());
          });
          req.on("error", reject);
          req.end('{"model":"bench","prompt":"hi"}');
          open.push(req);
        }),
    ),
  );
  const after = rss();
  for (const req of open) req.destroy();
  agent.destroy();
  await new Promise((r) => setTimeout(r, 500));
  return (after - before) / streams;
}

async function main(options: Options): Promise<void> {
  const stub = await spawnRole(["stub"]);
  const stubPort = stub.info.port as number;
  const stubUrl = `http://127.0.0.1:${stubPort}`;
  const guard = await spawnRole(["guard", stubUrl]);
  const nginx = await startNginx(stubPort);
  const guardPid = guard.child.pid as number;
  const nginxMaster = nginx?.child.pid;
  const paths: Path[] = [
    { name: "direct", url: stubUrl, pids: () => [] },
    ...(nginx && nginxMaster
      ? [{ name: "nginx", url: nginx.url, pids: () => [nginxMaster, ...childPids(nginxMaster)] }]
      : []),
    { name: "stall guard", url: guard.info.url as string, pids: () => [guardPid] },
  ];
  const report: Record<string, unknown> = {
    node: process.version,
    cpus: cpus().length,
    loadavgBefore: loadavg(),
    nginx: nginx ? spawnSync(NGINX, ["-v"], { encoding: "utf8" }).stderr.trim() : "not installed",
  };
  try {
    // Warm-up: connections, JIT.
    for (const path of paths) await ttfbRound(path, 16, 500, new Agent({ keepAlive: true }));

    const ttfb: Record<string, Record<string, { p50: number; p99: number }>> = {};
    const cpu = (path: Path) => path.pids().reduce((sum, pid) => sum + sampleProcess(pid).schedCpuMs, 0);
    const cpuMs = new Map<string, number>(paths.map((p) => [p.name, 0]));
    const requestsMeasured = new Map<string, number>(paths.map((p) => [p.name, 0]));
    for (const concurrency of [1, 16, 64]) {
      const samples = new Map<string, number[]>(paths.map((p) => [p.name, []]));
      const agents = new Map(
        paths.map((p) => [p.name, new Agent({ keepAlive: true, maxSockets: concurrency })]),
      );
      const rounds = 5;
      for (let round = 0; round < rounds; round++) {
        for (const path of paths) {
          const before = cpu(path);
          const got = await ttfbRound(
            path,
            concurrency,
            Math.ceil(options.requests / rounds),
            agents.get(path.name) as Agent,
          );
          cpuMs.set(path.name, (cpuMs.get(path.name) ?? 0) + cpu(path) - before);
          requestsMeasured.set(path.name, (requestsMeasured.get(path.name) ?? 0) + got.length);
          samples.get(path.name)?.push(...got);
        }
      }
      for (const agent of agents.values()) agent.destroy();
      ttfb[concurrency] = Object.fromEntries(
        [...samples].map(([name, values]) => [
          name,
          { p50: percentile(values, 0.5), p99: percentile(values, 0.99) },
        ]),
      );
    }
    report.ttfbMs = ttfb;
    // CPU the proxy process spends per streamed request: unlike latency, barely moved by other load.
    report.cpuUsPerRequest = Object.fromEntries(
      paths
        .filter((p) => p.name !== "direct")
        .map((p) => [p.name, ((cpuMs.get(p.name) ?? 0) * 1000) / (requestsMeasured.get(p.name) ?? 1)]),
    );

    const chunks: Record<string, { one: number; sixteen: number }> = {};
    for (const path of paths) {
      chunks[path.name] = {
        one: await chunkRate(path, 1, 100_000),
        sixteen: await chunkRate(path, 16, 10_000),
      };
    }
    report.chunksPerSecond = chunks;

    const rps: Record<string, number> = {};
    for (const path of paths) rps[path.name] = await requestRate(path, options.seconds);
    report.requestsPerSecond = rps;

    const memory: Record<string, number> = {};
    for (const path of paths.filter((p) => p.name !== "direct")) {
      memory[path.name] = await memoryPerStream(path, options.streams);
    }
    report.bytesPerOpenStream = memory;
    report.loadavgAfter = loadavg();
  } finally {
    guard.child.kill();
    stub.child.kill();
    nginx?.child.kill("SIGQUIT");
    if (nginx) rmSync(nginx.dir, { recursive: true, force: true });
  }
  print(report, paths, options);
  if (options.json) writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
}

function print(report: Record<string, unknown>, paths: Path[], options: Options): void {
  const ttfb = report.ttfbMs as Record<string, Record<string, { p50: number; p99: number }>>;
  const proxies = paths.filter((p) => p.name !== "direct").map((p) => p.name);
  const rows: string[][] = [];
  for (const concurrency of Object.keys(ttfb)) {
    const level = ttfb[concurrency] as Record<string, { p50: number; p99: number }>;
    const direct = level.direct as { p50: number; p99: number };
    rows.push([
      concurrency,
      `${fixed(direct.p50, 3)} / ${fixed(direct.p99, 3)}`,
      ...proxies.map((name) => {
        const own = level[name] as { p50: number; p99: number };
        return `+${fixed(own.p50 - direct.p50, 3)} / +${fixed(own.p99 - direct.p99, 3)}`;
      }),
    ]);
  }
  const lines = [
    `Proxy benchmark — Node ${report.node}, ${report.cpus} CPUs, load ${(report.loadavgBefore as number[]).map((l) => fixed(l, 2)).join(" ")}; ${report.nginx}; ${options.requests} streams per level`,
    "",
    "Time to first byte, ms (direct: p50 / p99; proxies: added p50 / added p99)",
    "",
    markdownTable(["concurrent streams", "direct", ...proxies], rows, [
      "r",
      "r",
      ...proxies.map(() => "r" as const),
    ]),
    "",
  ];
  const chunks = report.chunksPerSecond as Record<string, { one: number; sixteen: number }>;
  const rps = report.requestsPerSecond as Record<string, number>;
  const memory = report.bytesPerOpenStream as Record<string, number>;
  const cpuPerRequest = report.cpuUsPerRequest as Record<string, number>;
  lines.push(
    markdownTable(
      ["", ...paths.map((p) => p.name)],
      [
        ["streamed chunks/s, 1 stream", ...paths.map((p) => fixed(chunks[p.name]?.one ?? 0, 0))],
        ["streamed chunks/s, 16 streams", ...paths.map((p) => fixed(chunks[p.name]?.sixteen ?? 0, 0))],
        ["requests/s, GET /api/version ×64", ...paths.map((p) => fixed(rps[p.name] ?? 0, 0))],
        [
          "proxy CPU per streamed request, µs",
          ...paths.map((p) =>
            cpuPerRequest[p.name] === undefined ? "–" : fixed(cpuPerRequest[p.name] as number, 0),
          ),
        ],
        [
          `memory per open stream (${options.streams} open), kB`,
          ...paths.map((p) =>
            memory[p.name] === undefined ? "–" : fixed((memory[p.name] as number) / 1024, 1),
          ),
        ],
      ],
      ["l", ...paths.map(() => "r" as const)],
    ),
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}

const role = process.argv[2];
if (role === "stub") runStub();
else if (role === "guard") void runGuard(process.argv[3] as string);
else
  main(parseArgs(process.argv.slice(2))).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
