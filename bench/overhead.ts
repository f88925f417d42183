/**
 * `node dist/bench/overhead.js [--targets 1,10,50] [--seconds 120] [--fast-ticks 20] [--canaries 50] [--json]`
 *
 * What the watchdog costs the host it protects. The real daemon runs as a child process
 * (`node dist/cli.js run --config <tmp>`) so its own CPU and memory are read from
 * /proc/<pid>/{stat,status,task/*\/schedstat}; the simulated Ollama targets live in this process
 * (their CPU is not counted). Three phases:
 *   A. default 15 s interval, idle (1 target, nothing loaded) and 1/10/50 targets with a model
 *      loaded each (so periodic canaries run), all configurations at once, over --seconds;
 *   B. the same configurations one after another at a 1 s interval, over --fast-ticks ticks:
 *      the CPU per tick and how it grows with targets (least-squares line);
 *   C. one canary: CPU on the simulated server (server + runner), CPU in the client, latency.
 */
import { type ChildProcess, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCanary } from "../src/collectors/canary.js";
import { systemClock } from "../src/core/clock.js";
import { childPids, type ProcSample, sampleProcess } from "./lib/proc.js";
import { fixed, linearFit, markdownTable, median } from "./lib/stats.js";
import { type BenchTarget, generate, MODEL, sleep, startBenchTarget, titleProcess } from "./lib/target.js";

const CLI = fileURLToPath(new URL("../cli.js", import.meta.url));
const MB = 1024 * 1024;

interface Options {
  targets: number[];
  seconds: number;
  fastTicks: number;
  fastIntervalMs: number;
  canaries: number;
  phases: Set<"a" | "b" | "c">;
  /** Also write the JSON report to this file. */
  jsonOut?: string;
  /** Point the daemon's procRoot at an empty directory: the cost without the procfs collector. */
  noProcfs: boolean;
  /** Write a V8 CPU profile of every daemon into this directory. */
  profileDir?: string;
  /** Extra arguments for the daemon's node (V8 flags), to compare settings. */
  nodeArgs: string[];
  env: Record<string, string>;
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    targets: [1, 10, 50],
    seconds: 120,
    fastTicks: 20,
    fastIntervalMs: 1000,
    canaries: 50,
    phases: new Set(["a", "b", "c"]),
    noProcfs: false,
    nodeArgs: [],
    env: {},
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === "--targets") options.targets = value().split(",").map(Number);
    else if (arg === "--seconds") options.seconds = Number(value());
    else if (arg === "--fast-ticks") options.fastTicks = Number(value());
    else if (arg === "--fast-interval-ms") options.fastIntervalMs = Number(value());
    else if (arg === "--canaries") options.canaries = Number(value());
    else if (arg === "--phases") options.phases = new Set(value().split(",") as ("a" | "b" | "c")[]);
    else if (arg === "--profile") options.profileDir = value();
    else if (arg === "--node-args") options.nodeArgs = value().split(/\s+/).filter(Boolean);
    else if (arg === "--env") {
      const [key, ...rest] = value().split("=");
      options.env[key as string] = rest.join("=");
    } else if (arg === "--json-out") options.jsonOut = value();
    else if (arg === "--no-procfs") options.noProcfs = true;
    else if (arg === "--json") options.json = true;
    else if (arg === "--help" || arg === "-h") {
      process.stdout.write(
        "usage: node dist/bench/overhead.js [--targets 1,10,50] [--seconds 120] [--fast-ticks 20] [--fast-interval-ms 1000] [--canaries 50] [--phases a,b,c] [--profile DIR] [--node-args '--flag …'] [--env NAME=VALUE] [--no-procfs] [--json] [--json-out FILE]\n",
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  if (options.targets.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error("--targets: positive integers");
  return options;
}

interface Configuration {
  name: string;
  /** Targets with a model loaded; 0 = the idle configuration (one target, nothing loaded). */
  loaded: number;
  sims: BenchTarget[];
}

const children = new Set<ChildProcess>();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

interface Daemon {
  pid: number;
  url: string;
  ticks(): Promise<number>;
  stop(): Promise<void>;
  /** After stop(): whether the daemon ever loaded the global fetch (undici); undefined if unknown. */
  loadedUndici(): boolean | undefined;
}

/**
 * Preloaded into each daemon (`--import`): at exit it writes the names of the Node built-ins and
 * the CommonJS files the process loaded, so the report can say whether `run` ever pulled in undici
 * — Node's (the global fetch) or the npm package (the stall guard's client) — and its WebAssembly
 * parser, ≈ 20 MB (docs/performance.md, "Memory").
 */
function modulesProbe(file: string): string {
  const code = `import { writeFileSync } from "node:fs"; import { createRequire } from "node:module"; const cache = createRequire(import.meta.url).cache; process.on("exit", () => writeFileSync(${JSON.stringify(file)}, JSON.stringify([...process.moduleLoadList, ...Object.keys(cache)])));`;
  // A file, not a data: URL: createRequire needs a file URL or path to start from.
  const probe = `${file}.probe.mjs`;
  writeFileSync(probe, code);
  return probe;
}

let profileDir: string | undefined;
let nodeArgs: string[] = [];
let daemonEnv: Record<string, string> = {};
let emptyProcRoot: string | undefined;

async function startDaemon(dir: string, config: Configuration, intervalMs: number): Promise<Daemon> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const first = config.sims[0] as BenchTarget;
  const document = {
    interval: `${intervalMs}ms`,
    listen: `127.0.0.1:${port}`,
    stateDir: join(dir, "state"),
    ...(emptyProcRoot ? { procRoot: emptyProcRoot } : {}),
    targets: config.sims.map((sim, i) => ({
      name: `sim${i}`,
      url: sim.url,
      restart: { command: { argv: ["/bin/true"] } },
      processes: { server: sim.serverPattern, runner: sim.runnerPattern },
    })),
    gpu: { backend: "nvidia", nvidiaSmi: first.simulator.nvidiaSmiPath },
  };
  const configPath = join(dir, "config.yaml");
  writeFileSync(configPath, JSON.stringify(document, null, 2));
  const log = openSync(join(dir, "daemon.log"), "a");
  const profile = profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [];
  const modulesFile = join(dir, "modules.json");
  const probe = ["--import", modulesProbe(modulesFile)];
  const child = spawn(
    process.execPath,
    [...profile, ...probe, ...nodeArgs, CLI, "run", "--config", configPath],
    {
      stdio: ["ignore", log, log],
      env: { ...process.env, ...daemonEnv },
    },
  );
  closeSync(log);
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const ticks = async () => {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
    return ((await response.json()) as { ticks: number }).ticks;
  };
  const deadline = performance.now() + 30_000;
  for (;;) {
    try {
      await ticks();
      break;
    } catch (error) {
      if (child.exitCode !== null || performance.now() > deadline)
        throw new Error(`daemon did not start (see ${join(dir, "daemon.log")}): ${(error as Error).message}`);
      await sleep(100);
    }
  }
  return {
    pid: child.pid as number,
    url,
    ticks,
    async stop() {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
      children.delete(child);
    },
    loadedUndici() {
      if (!existsSync(modulesFile)) return undefined;
      const modules = JSON.parse(readFileSync(modulesFile, "utf8")) as string[];
      return modules.some((name) => name.includes("undici"));
    },
  };
}

interface Measurement {
  config: string;
  targets: number;
  loaded: number;
  intervalMs: number;
  elapsedMs: number;
  ticks: number;
  cpuMs: number;
  schedCpuMs: number;
  childrenCpuMs: number;
  peakRssBytes: number;
  rssBytes: number;
  /** Processes on the host during the window (the procfs collector reads each of them every tick, per target). */
  hostProcesses: number;
  /** Whether the daemon loaded the global fetch (undici) at any point; null if the probe wrote nothing. */
  undiciLoaded: boolean | null;
}

function countProcesses(): number {
  return readdirSync("/proc").filter((name) => /^\d+$/.test(name)).length;
}

/** Starts a daemon, lets it warm up for `warmTicks`, then measures over a time or a number of ticks. */
async function measure(
  dir: string,
  config: Configuration,
  intervalMs: number,
  window: { warmTicks: number; ms?: number; ticks?: number },
): Promise<Measurement> {
  const daemon = await startDaemon(dir, config, intervalMs);
  let measured: Omit<Measurement, "undiciLoaded">;
  try {
    while ((await daemon.ticks()) < window.warmTicks) await sleep(Math.min(250, intervalMs / 4));
    const t0 = performance.now();
    const ticks0 = await daemon.ticks();
    const s0 = sampleProcess(daemon.pid);
    const processes0 = countProcesses();
    await sleep(window.ms ?? (window.ticks ?? 10) * intervalMs);
    const ticks1 = await daemon.ticks();
    const s1: ProcSample = sampleProcess(daemon.pid);
    const elapsedMs = performance.now() - t0;
    measured = {
      config: config.name,
      targets: config.sims.length,
      loaded: config.loaded,
      intervalMs,
      elapsedMs,
      ticks: ticks1 - ticks0,
      cpuMs: s1.cpuMs - s0.cpuMs,
      schedCpuMs: s1.schedCpuMs - s0.schedCpuMs,
      childrenCpuMs: s1.childrenCpuMs - s0.childrenCpuMs,
      peakRssBytes: s1.peakRssBytes,
      rssBytes: s1.rssBytes,
      hostProcesses: Math.round((processes0 + countProcesses()) / 2),
    };
  } finally {
    await daemon.stop();
  }
  return { ...measured, undiciLoaded: daemon.loadedUndici() ?? null };
}

interface CanaryCost {
  canaries: number;
  serverCpuMsPerCanary: number;
  clientCpuMsPerCanary: number;
  latencyMedianMs: number;
  latencyP95Ms: number;
  ttftMedianMs: number;
  outcomes: Record<string, number>;
}

/** One canary against a simulator running as its own process (`ollama-watchdog simulate`). */
async function canaryCost(dir: string, count: number): Promise<CanaryCost> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [CLI, "simulate", "--port", String(port), "--state-dir", join(dir, "sim")],
    {
      stdio: ["ignore", "pipe", "ignore"],
    },
  );
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      let out = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes("listening")) resolve();
      });
      child.once("exit", (code) => reject(new Error(`simulator exited ${code}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    if (!(await generate(url, MODEL, { timeoutMs: 30_000, keepAlive: "1h" })))
      throw new Error("model load failed");
    const one = () =>
      runCanary({
        url,
        model: MODEL,
        prompt: "hi",
        timeoutMs: 30_000,
        clock: systemClock,
      });
    for (let i = 0; i < 5; i++) await one();
    const serverPids = [child.pid as number, ...childPids(child.pid as number)];
    const serverCpu = () => serverPids.reduce((sum, pid) => sum + sampleProcess(pid).schedCpuMs, 0);
    const server0 = serverCpu();
    const client0 = process.cpuUsage();
    const durations: number[] = [];
    const ttfts: number[] = [];
    const outcomes: Record<string, number> = {};
    for (let i = 0; i < count; i++) {
      const result = await one();
      durations.push(result.durationMs);
      if (result.ttftMs !== undefined) ttfts.push(result.ttftMs);
      outcomes[result.outcome] = (outcomes[result.outcome] ?? 0) + 1;
    }
    const client = process.cpuUsage(client0);
    const server1 = serverCpu();
    const sorted = [...durations].sort((a, b) => a - b);
    return {
      canaries: count,
      serverCpuMsPerCanary: (server1 - server0) / count,
      clientCpuMsPerCanary: (client.user + client.system) / 1000 / count,
      latencyMedianMs: median(durations) ?? 0,
      latencyP95Ms: sorted[Math.min(sorted.length - 1, Math.floor(0.95 * sorted.length))] ?? 0,
      ttftMedianMs: median(ttfts) ?? 0,
      outcomes,
    };
  } finally {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
    children.delete(child);
  }
}

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  profileDir = options.profileDir;
  nodeArgs = options.nodeArgs;
  daemonEnv = options.env;
  const stopAll = () => {
    for (const child of children) child.kill("SIGKILL");
    process.exit(130);
  };
  process.once("SIGINT", stopAll);
  process.once("SIGTERM", stopAll);
  const began = performance.now();
  const progress = (text: string) =>
    process.stderr.write(`[${((performance.now() - began) / 1000).toFixed(0).padStart(4)} s] ${text}\n`);
  const loadBefore = loadavg();
  const workDir = mkdtempSync(join(tmpdir(), "owd-overhead-"));
  const serverPattern = titleProcess(`overhead-${process.pid}`);
  if (options.noProcfs) {
    emptyProcRoot = join(workDir, "empty-proc");
    mkdirSync(emptyProcRoot);
  }
  const allSims: BenchTarget[] = [];
  try {
    const configs: Configuration[] = [];
    let simIndex = 0;
    const newSims = async (n: number) => {
      const sims: BenchTarget[] = [];
      for (let i = 0; i < n; i++) {
        const sim = await startBenchTarget({
          dir: join(workDir, `sim-${simIndex++}`),
          serverPattern,
          simulator: { timing: {} },
        });
        sims.push(sim);
        allSims.push(sim);
      }
      return sims;
    };
    configs.push({ name: "idle (1 target, no model)", loaded: 0, sims: await newSims(1) });
    for (const n of options.targets)
      configs.push({
        name: `${n} target${n > 1 ? "s" : ""}, model loaded`,
        loaded: n,
        sims: await newSims(n),
      });
    const toLoad = configs.flatMap((c) => (c.loaded ? c.sims : []));
    progress(`${allSims.length} simulators up; loading a model in ${toLoad.length} of them`);
    await inBatches(toLoad, 4, async (sim) => {
      if (!(await generate(sim.url, MODEL, { timeoutMs: 60_000, keepAlive: "2h" })))
        throw new Error(`loading ${MODEL} on ${sim.url} failed`);
    });

    const phaseA: Measurement[] = [];
    if (options.phases.has("a")) {
      progress(
        `phase A: ${configs.length} daemons at the 15 s interval, ${options.seconds} s each, side by side`,
      );
      phaseA.push(
        ...(await Promise.all(
          configs.map((c, i) =>
            measure(join(workDir, `a-${i}`), c, 15_000, { warmTicks: 2, ms: options.seconds * 1000 }),
          ),
        )),
      );
    }
    const phaseB: Measurement[] = [];
    if (options.phases.has("b")) {
      for (const [i, c] of configs.entries()) {
        progress(`phase B: ${c.name} at ${options.fastIntervalMs} ms, ${options.fastTicks} ticks`);
        phaseB.push(
          await measure(join(workDir, `b-${i}`), c, options.fastIntervalMs, {
            warmTicks: 3,
            ticks: options.fastTicks,
          }),
        );
      }
    }
    let canary: CanaryCost | undefined;
    if (options.phases.has("c")) {
      progress(`phase C: ${options.canaries} canaries`);
      canary = await canaryCost(join(workDir, "canary"), options.canaries);
    }
    const loadAfter = loadavg();
    report(options, phaseA, phaseB, canary, {
      date: new Date().toISOString(),
      node: process.version,
      cpus: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
      loadavg: { before: loadBefore, after: loadAfter },
      wallSeconds: Math.round((performance.now() - began) / 1000),
    });
  } finally {
    await Promise.all(allSims.map((sim) => sim.stop()));
    for (const child of children) child.kill("SIGKILL");
    rmSync(workDir, { recursive: true, force: true });
  }
}

const undiciText = (m: Measurement) => (m.undiciLoaded === null ? "?" : m.undiciLoaded ? "yes" : "no");

interface Meta {
  date: string;
  node: string;
  cpus: string;
  loadavg: { before: number[]; after: number[] };
  wallSeconds: number;
}

function report(
  options: Options,
  phaseA: Measurement[],
  phaseB: Measurement[],
  canary: CanaryCost | undefined,
  meta: Meta,
): void {
  const perTick = (m: Measurement) => (m.ticks > 0 ? m.schedCpuMs / m.ticks : 0);
  const percent = (m: Measurement) => (100 * m.schedCpuMs) / m.elapsedMs;
  const loadedB = phaseB.filter((m) => m.loaded > 0);
  const fit =
    loadedB.length >= 2 ? linearFit(loadedB.map((m) => ({ x: m.targets, y: perTick(m) }))) : undefined;
  const ten = phaseA.find((m) => m.loaded === 10);
  const targets = ten
    ? {
        cpuPercentAt10: percent(ten),
        peakRssMbAt10: ten.peakRssBytes / MB,
        settledRssMbAt10: ten.rssBytes / MB,
        cpuAtMost075Percent: percent(ten) <= 0.75,
        peakAtMost70Mb: ten.peakRssBytes / MB <= 70,
        settledAtMost60Mb: ten.rssBytes / MB <= 60,
      }
    : undefined;
  const json = `${JSON.stringify({ meta, phaseA, phaseB, fit, canary, targets }, null, 2)}\n`;
  if (options.jsonOut) writeFileSync(options.jsonOut, json);
  if (options.json) {
    process.stdout.write(json);
    return;
  }
  const lines: string[] = [];
  lines.push(`# Overhead benchmark — ${meta.date}`);
  lines.push("");
  lines.push(
    `Node ${meta.node}, ${meta.cpus}; load average ${meta.loadavg.before.map((v) => v.toFixed(2)).join(" ")} before, ${meta.loadavg.after.map((v) => v.toFixed(2)).join(" ")} after; ${meta.wallSeconds} s wall. ` +
      (options.noProcfs ? "**procfs collector disabled (procRoot = an empty directory).** " : "") +
      "CPU is the daemon process's own (all its threads, from schedstat); nvidia-smi runs are its children and listed apart.",
  );
  if (phaseA.length) {
    lines.push("");
    lines.push(
      `## At the default 15 s interval (${options.seconds} s window after 2 warm-up ticks, configurations side by side)`,
    );
    lines.push("");
    lines.push(
      markdownTable(
        [
          "configuration",
          "ticks",
          "CPU, % of one core",
          "CPU per tick",
          "nvidia-smi CPU (children)",
          "peak RSS (VmHWM)",
          "RSS at end",
          "host processes",
          "undici loaded",
        ],
        phaseA.map((m) => [
          m.config,
          String(m.ticks),
          `${fixed(percent(m), 3)} %`,
          `${fixed(perTick(m), 1)} ms`,
          `${fixed(m.childrenCpuMs, 0)} ms`,
          `${fixed(m.peakRssBytes / MB, 1)} MB`,
          `${fixed(m.rssBytes / MB, 1)} MB`,
          String(m.hostProcesses),
          undiciText(m),
        ]),
        ["l", "r", "r", "r", "r", "r", "r", "r", "l"],
      ),
    );
  }
  if (phaseB.length) {
    lines.push("");
    lines.push(
      `## Cost per tick (${options.fastIntervalMs} ms interval, ${options.fastTicks} ticks after 3 warm-up ticks, one configuration at a time)`,
    );
    lines.push("");
    lines.push(
      markdownTable(
        [
          "configuration",
          "ticks",
          "CPU per tick",
          "per target",
          "→ % of one core at 15 s",
          "peak RSS (VmHWM)",
          "host processes",
        ],
        phaseB.map((m) => [
          m.config,
          String(m.ticks),
          `${fixed(perTick(m), 2)} ms`,
          `${fixed(perTick(m) / m.targets, 2)} ms`,
          `${fixed((100 * perTick(m)) / 15_000, 3)} %`,
          `${fixed(m.peakRssBytes / MB, 1)} MB`,
          String(m.hostProcesses),
        ]),
        ["l", "r", "r", "r", "r", "r", "r"],
      ),
    );
    if (fit) {
      lines.push("");
      lines.push(
        `Least-squares line over the loaded configurations: CPU per tick ≈ ${fixed(fit.intercept, 2)} ms + ${fixed(fit.slope, 3)} ms × targets (R² = ${fixed(fit.r2, 4)}).`,
      );
      const [a, b, c] = loadedB;
      if (a && b && c) {
        const step = (x: Measurement, y: Measurement) => (perTick(y) - perTick(x)) / (y.targets - x.targets);
        lines.push(
          `Marginal cost per added target: ${fixed(step(a, b), 3)} ms (${a.targets}→${b.targets}), ${fixed(step(b, c), 3)} ms (${b.targets}→${c.targets}).`,
        );
      }
    }
  }
  if (canary) {
    lines.push("");
    lines.push(
      `## One canary (${canary.canaries} in a row against \`ollama-watchdog simulate\`, model loaded)`,
    );
    lines.push("");
    lines.push(
      markdownTable(
        [
          "server CPU (server + runner)",
          "client CPU (the daemon's side)",
          "latency median",
          "latency p95",
          "time to first token",
          "outcomes",
        ],
        [
          [
            `${fixed(canary.serverCpuMsPerCanary, 2)} ms`,
            `${fixed(canary.clientCpuMsPerCanary, 2)} ms`,
            `${fixed(canary.latencyMedianMs, 1)} ms`,
            `${fixed(canary.latencyP95Ms, 1)} ms`,
            `${fixed(canary.ttftMedianMs, 1)} ms`,
            Object.entries(canary.outcomes)
              .map(([k, v]) => `${k} ${v}`)
              .join(", "),
          ],
        ],
        ["r", "r", "r", "r", "r", "l"],
      ),
    );
  }
  if (targets) {
    lines.push("");
    lines.push("## Issue 7 targets");
    lines.push("");
    lines.push(
      `- 10 targets at 15 s: CPU ${fixed(targets.cpuPercentAt10, 3)} % of one core (goal ≤ 0.75 %: ${targets.cpuAtMost075Percent ? "met" : "NOT met"}), ` +
        `peak RSS ${fixed(targets.peakRssMbAt10, 1)} MB (goal ≤ 70 MB: ${targets.peakAtMost70Mb ? "met" : "NOT met"}), ` +
        `RSS at end ${fixed(targets.settledRssMbAt10, 1)} MB (goal ≤ 60 MB: ${targets.settledAtMost60Mb ? "met" : "NOT met"}).`,
    );
    if (fit)
      lines.push(
        `- Linear in targets: R² = ${fixed(fit.r2, 4)} for a straight line through the per-tick costs.`,
      );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`overhead: ${(error as Error).stack ?? String(error)}\n`);
  for (const child of children) child.kill("SIGKILL");
  process.exit(1);
});
