/**
 * `node dist/bench/module-cost.js [--runs 5] [--json]`
 *
 * What each dependency costs in memory, alone: every case runs in a fresh `node` that imports
 * one module (and uses it the way the daemon does, so lazily built parts are counted), collects
 * garbage, and reports its resident set (VmRSS), its peak (VmHWM) and V8's heap. The first case
 * is Node itself with nothing imported; the others are shown as what they add to it. Medians of
 * --runs fresh processes. Cases that import from dist/ need a build (`npx tsup`).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { fixed, markdownTable, median } from "./lib/stats.js";

const DIST = fileURLToPath(new URL("../", import.meta.url));
const MB = 1024 * 1024;

interface Case {
  name: string;
  /** Why it is measured / what the daemon uses it for. */
  note: string;
  /** ESM module body: imports and the use; top-level await allowed. */
  code: string;
}

/** A loopback HTTP server answering JSON, for the fetch cases (inside the measured process). */
const LOCAL_SERVER = `
import { createServer } from "node:http";
const server = createServer((_q, r) => { r.setHeader("content-type", "application/json"); r.end('{"version":"0.12.5"}'); });
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = "http://127.0.0.1:" + server.address().port + "/api/version";
`;

export const CASES: Case[] = [
  { name: "node (nothing imported)", note: "the floor", code: "" },
  {
    name: "node:http server",
    note: "the daemon's listener (/metrics, page, API)",
    code: `${LOCAL_SERVER}`,
  },
  {
    name: "global fetch (Node's bundled undici)",
    note: "Ollama API calls and canaries, one request made",
    code: `${LOCAL_SERVER} await (await fetch(url)).text();`,
  },
  {
    name: "node:http client (httpFetch)",
    note: "Ollama API calls and canaries since lean2: one request, its body read as a web stream",
    code: `${LOCAL_SERVER} import { request, Agent } from "node:http"; import { Readable } from "node:stream";
const res = await new Promise((resolve, reject) => request(url, { agent: new Agent({ keepAlive: false }) }, resolve).on("error", reject).end());
const reader = Readable.toWeb(res).pipeThrough(new TextDecoderStream()).getReader();
while (!(await reader.read()).done);`,
  },
  {
    name: "commander",
    note: "the CLI",
    code: `import { Command } from "commander"; new Command("x").option("--a").parse(["node", "x"]);`,
  },
  {
    name: "pino",
    note: "JSON logs, one line written (sync to /dev/null)",
    code: `import { pino } from "pino"; pino({ base: { s: "x" }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: "/dev/null", sync: true })).info({ a: 1 }, "hello");`,
  },
  {
    name: "prom-client (its index)",
    note: "a registry of our own, one gauge and one histogram, one scrape; the index also loads default metrics (@opentelemetry/api), Pushgateway, cluster, Summary",
    code: `import { Gauge, Histogram, Registry } from "prom-client"; const r = new Registry(); new Gauge({ name: "g", help: "h", registers: [r] }).set(1); new Histogram({ name: "h", help: "h", registers: [r] }).observe(0.1); await r.metrics();`,
  },
  {
    name: "prom-client (its metric files)",
    note: "the same, with the classes loaded from their own files as src/telemetry/prom.ts does",
    code: `import Registry from "prom-client/lib/registry.js"; import Gauge from "prom-client/lib/gauge.js"; import Histogram from "prom-client/lib/histogram.js"; import "prom-client/lib/counter.js"; const r = new Registry(); new Gauge({ name: "g", help: "h", registers: [r] }).set(1); new Histogram({ name: "h", help: "h", registers: [r] }).observe(0.1); await r.metrics();`,
  },
  {
    name: "js-yaml",
    note: "config parsing",
    code: `import { load } from "js-yaml"; load("interval: 15s\\ntargets:\\n  - name: a\\n    url: http://127.0.0.1:11434\\n");`,
  },
  {
    name: "valibot",
    note: "config validation (the whole package imported)",
    code: `import * as v from "valibot"; v.parse(v.object({ a: v.string() }), { a: "x" });`,
  },
  {
    name: "node:https",
    note: "the listener with TLS (web config); loaded only then",
    code: `import "node:https";`,
  },
  {
    name: "bcryptjs",
    note: "basic auth (web config); loaded on the first check",
    code: `import bcrypt from "bcryptjs"; bcrypt.compareSync("x", "$2b$04$Ikzhw7kypoolLIqxeMPwkeY9jMgZosFnQ4YSXA6gSWnIlIKjVPFWa");`,
  },
  {
    name: "nodemailer",
    note: "e-mail notifications; loaded on the first e-mail",
    code: `import nodemailer from "nodemailer"; nodemailer.createTransport({ host: "127.0.0.1", port: 25 });`,
  },
];

interface Sample {
  rss: number;
  peak: number;
  /** Private memory (heap, stacks, compiled code) and file-backed pages (Node's own binary, shared). */
  anon: number;
  file: number;
  heapUsed: number;
  heapTotal: number;
}

/** Runs one case in a fresh node; resolves with its memory after a full GC. */
function measure(code: string): Promise<Sample> {
  const body = `${code}
globalThis.gc(); globalThis.gc();
await new Promise((resolve) => setTimeout(resolve, 200));
globalThis.gc();
const status = (await import("node:fs")).readFileSync("/proc/self/status", "utf8");
const kb = (key) => Number(new RegExp("^" + key + ":\\\\s*(\\\\d+)", "m").exec(status)[1]) * 1024;
const m = process.memoryUsage();
process.stdout.write(JSON.stringify({ rss: kb("VmRSS"), peak: kb("VmHWM"), anon: kb("RssAnon"), file: kb("RssFile"), heapUsed: m.heapUsed, heapTotal: m.heapTotal }));
process.exit(0);
`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", "--input-type=module", "-e", body], {
      cwd: DIST,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err += chunk;
    });
    const deadline = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("close", (status) => {
      clearTimeout(deadline);
      if (status !== 0) reject(new Error(`case failed (exit ${status}):\n${err}\n${code}`));
      else resolve(JSON.parse(out) as Sample);
    });
  });
}

export interface CaseResult {
  name: string;
  note: string;
  rssMB: number;
  peakMB: number;
  heapUsedMB: number;
  anonMB: number;
  fileMB: number;
  /** Added to the "nothing imported" floor. */
  addedRssMB: number;
  addedPeakMB: number;
}

export async function measureCases(cases: Case[], runs: number): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) {
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) samples.push(await measure(c.code));
    const rssMB = (median(samples.map((s) => s.rss)) ?? 0) / MB;
    const peakMB = (median(samples.map((s) => s.peak)) ?? 0) / MB;
    const floor = results[0];
    results.push({
      name: c.name,
      note: c.note,
      rssMB,
      peakMB,
      heapUsedMB: (median(samples.map((s) => s.heapUsed)) ?? 0) / MB,
      anonMB: (median(samples.map((s) => s.anon)) ?? 0) / MB,
      fileMB: (median(samples.map((s) => s.file)) ?? 0) / MB,
      addedRssMB: floor ? rssMB - floor.rssMB : 0,
      addedPeakMB: floor ? peakMB - floor.peakMB : 0,
    });
  }
  return results;
}

export function markdown(results: CaseResult[]): string {
  return markdownTable(
    [
      "module",
      "used for",
      "RSS",
      "added RSS",
      "peak RSS (VmHWM)",
      "added peak",
      "of RSS: private",
      "of RSS: file (node binary)",
      "V8 heap used",
    ],
    results.map((r, i) => [
      r.name,
      r.note,
      `${fixed(r.rssMB, 1)} MB`,
      i === 0 ? "—" : `${r.addedRssMB >= 0 ? "+" : ""}${fixed(r.addedRssMB, 1)} MB`,
      `${fixed(r.peakMB, 1)} MB`,
      i === 0 ? "—" : `${r.addedPeakMB >= 0 ? "+" : ""}${fixed(r.addedPeakMB, 1)} MB`,
      `${fixed(r.anonMB, 1)} MB`,
      `${fixed(r.fileMB, 1)} MB`,
      `${fixed(r.heapUsedMB, 1)} MB`,
    ]),
    ["l", "l", "r", "r", "r", "r", "r", "r", "r"],
  );
}

async function main(argv: string[]): Promise<void> {
  let runs = 5;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--runs") runs = Number(argv[++i]);
    else if (argv[i] === "--json") json = true;
    else if (argv[i] === "--help" || argv[i] === "-h") {
      process.stdout.write("usage: node dist/bench/module-cost.js [--runs 5] [--json]\n");
      return;
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  const results = await measureCases(CASES, runs);
  process.stdout.write(
    json
      ? `${JSON.stringify({ node: process.version, runs, results }, null, 2)}\n`
      : `Node ${process.version}, median of ${runs} fresh processes each:\n\n${markdown(results)}\n`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error) => {
    process.stderr.write(`${(error as Error).stack}\n`);
    process.exit(1);
  });
}
