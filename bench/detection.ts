/**
 * `node dist/bench/detection.js [--runs 3] [--factor 40] [--jobs 4] [--only F1,B1] [--profiles 0.12,0.33]
 *  [--rules watchdog,bash] [--no-full] [--json] [--json-out FILE]`
 *
 * Every FAILURE-MODES.md scenario through the simulator and (1) the real watchdog daemon,
 * (2) the seed's bash rule (bench/bash-rule.ts), on every Ollama profile of the simulator
 * (--profiles picks some), at timings scaled down by --factor, repeated --runs times; plus F1 once
 * at the default timings on the default profile (--no-full skips it, --full-only runs only it).
 * Each run is a child process (one simulator, one rule, a unique server title), --jobs at a time.
 * Prints a Markdown table (or --json): detection (fault → first action decided), recovery
 * (fault → a real generation succeeds again) and wrong actions, in default-equivalent seconds.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../src/config/load.js";
import { silentLogger } from "../src/core/log.js";
import type { TickRecord } from "../src/core/types.js";
import { Watchdog } from "../src/daemon/watchdog.js";
import { DEFAULT_PROFILE, OLLAMA_PROFILES, resolveProfile } from "../src/simulator/profiles.js";
import { BashRule } from "./bash-rule.js";
import {
  type BashTimings,
  scaledBash,
  scaledSimulatorTiming,
  scaledWatchdog,
  type WatchdogTimings,
  watchdogTimingDocument,
} from "./lib/scale.js";
import { type ActionAt, countWrong, EXPECT_TEXT, SCENARIOS, type ScenarioDef } from "./lib/scenarios.js";
import { markdownTable, type Spread, spread } from "./lib/stats.js";
import { generate, sleep, startBenchTarget, titleProcess } from "./lib/target.js";

type Rule = "watchdog" | "bash";

/** Run once at the default timings: the seed incident, and the same under traffic to another model. */
const FULL_SCENARIOS = ["F1", "F1+traffic"];

interface Job {
  scenario: string;
  rule: Rule;
  /** The simulator's Ollama profile id. */
  profile: string;
  factor: number;
  run: number;
  /** End the run once recovered (used for the long default-timing F1). */
  stopWhenRecovered?: boolean;
}

interface RunResult {
  job: Job;
  /** ms after the fault, at the scale the run used. */
  detectionMs?: number;
  recoveryMs?: number;
  actions: ActionAt[];
  wrong: number;
  /** watchdog: states seen after the fault, in order of first appearance; bash: loop notes. */
  notes: string[];
  wallMs: number;
  error?: string;
}

// ── one run (child process) ───────────────────────────────────────────────────────────────────

async function runJob(job: Job): Promise<RunResult> {
  const started = performance.now();
  const def = SCENARIOS.find((s) => s.id === job.scenario) as ScenarioDef;
  const factor = job.factor;
  const w = scaledWatchdog(factor);
  const b = scaledBash(factor);
  const dir = mkdtempSync(join(tmpdir(), "owd-bench-"));
  const serverPattern = titleProcess(`bench-${process.pid}`);
  const target = await startBenchTarget({
    dir,
    serverPattern,
    simulator: {
      ...(def.numParallel ? { numParallel: def.numParallel } : {}),
      ollamaVersion: job.profile,
      timing: scaledSimulatorTiming(factor),
    },
  });
  const actions: { kind: ActionAt["kind"]; at: number }[] = [];
  const notes: string[] = [];
  let onAction: () => void = () => undefined;
  let endRun: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    endRun = resolve;
  });
  let finished = false;
  void done.then(() => {
    finished = true;
  });

  const records: { at: number; record: TickRecord }[] = [];
  let watchdog: Watchdog | undefined;
  let bash: BashRule | undefined;
  if (job.rule === "watchdog") {
    const config = parseConfig(
      {
        ...watchdogTimingDocument(w),
        listen: "127.0.0.1:0",
        stateDir: join(dir, "state"),
        targets: [
          {
            name: "sim",
            url: target.url,
            restart: { command: { argv: target.restartArgv, timeout: `${Math.max(5000, w.cooldown)}ms` } },
            processes: { server: serverPattern },
          },
        ],
        gpu: { backend: "nvidia", nvidiaSmi: target.simulator.nvidiaSmiPath, timeout: `${w.gpuTimeout}ms` },
      },
      {},
    );
    watchdog = await Watchdog.start({ config, log: silentLogger() });
    watchdog.events.on("tick", (batch: TickRecord[]) => {
      const at = performance.now();
      for (const record of batch) {
        records.push({ at, record });
        for (const command of record.verdict.commands) {
          if (command.kind === "canary") continue;
          actions.push({ kind: command.kind, at });
          onAction();
        }
      }
    });
  } else {
    bash = new BashRule({
      timings: b,
      nvidiaSmi: target.simulator.nvidiaSmiPath,
      restartArgv: target.restartArgv,
      lastRequestAt: target.lastRequestAt,
      onRestart: (at) => {
        actions.push({ kind: "restart", at });
        onAction();
      },
    }).start();
  }

  const ctx = { url: target.url, factor, done, isDone: () => finished };
  try {
    for (const model of def.load) {
      const ok = await generate(target.url, model, { timeoutMs: 30_000, keepAlive: "1h" });
      if (!ok) throw new Error(`setup: loading ${model} failed`);
    }
    def.before?.(ctx);
    await settle(job.rule, def, records, w, b);
    actions.length = 0;

    const t0 = performance.now();
    if (def.fault) target.simulator.setFault(def.fault(factor));
    def.after?.(ctx);

    let recoveredAt: number | undefined;
    let polling = false;
    onAction = () => {
      if (polling || !(def.heals || job.stopWhenRecovered)) return;
      polling = true;
      void (async () => {
        // A user waits for the reload: a poll that gave up early would cancel the very load it
        // waits for (Ollama loads under the requesting client's context).
        const timeoutMs = Math.max(500, w.verifyWithin);
        while (!finished && recoveredAt === undefined) {
          if (await generate(target.url, def.pollModel, { timeoutMs, keepAlive: "1h" })) {
            recoveredAt = performance.now();
            break;
          }
          await sleep(Math.max(50, w.interval / 4));
        }
      })();
    };
    if (actions.length > 0) onAction();
    const end = t0 + def.windowEq / factor;
    while (performance.now() < end) {
      if (
        job.stopWhenRecovered &&
        recoveredAt !== undefined &&
        performance.now() > recoveredAt + 2 * w.interval
      )
        break;
      await sleep(Math.min(100, w.interval / 2));
    }
    endRun();

    const relative: ActionAt[] = actions.map((a) => ({ kind: a.kind, ms: a.at - t0 }));
    const recoveryMs = recoveredAt === undefined ? undefined : recoveredAt - t0;
    if (watchdog) {
      const states: string[] = [];
      for (const { at, record } of records) {
        if (at >= t0 && !states.includes(record.verdict.state)) states.push(record.verdict.state);
      }
      notes.push(`states: ${states.join(" → ")}`);
      // Why a fault went unanswered: the verdicts' distinct reasons (numbers masked), most frequent first.
      if (relative.length === 0 && def.expect !== "none") {
        const counts = new Map<string, number>();
        for (const { at, record } of records) {
          if (at < t0) continue;
          const text = `${record.verdict.state}: ${record.verdict.reason.replace(/\d+(\.\d+)?(?=ms|s\b|%)/g, "#")}`;
          counts.set(text, (counts.get(text) ?? 0) + 1);
        }
        const top = [...counts].sort((x, y) => y[1] - x[1]).slice(0, 3);
        notes.push(...top.map(([text]) => `reason: ${text}`));
      } else if (relative.length === 0) {
        const suspect = records.find(({ at, record }) => at >= t0 && record.verdict.state !== "healthy");
        if (suspect) notes.push(`reason: ${suspect.record.verdict.state}: ${suspect.record.verdict.reason}`);
      }
    }
    if (bash) {
      if (bash.hungFor(2 * b.interval)) notes.push("loop hung on nvidia-smi");
    }
    return {
      job,
      ...(relative[0] ? { detectionMs: relative[0].ms } : {}),
      ...(recoveryMs !== undefined ? { recoveryMs } : {}),
      actions: relative,
      wrong: countWrong(def.expect, relative, recoveryMs),
      notes,
      wallMs: performance.now() - started,
    };
  } finally {
    endRun();
    await watchdog?.stop();
    await bash?.stop();
    await target.stop();
    killChildren();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Waits until the target is settled: the watchdog healthy (after a good canary when a model is loaded), or two bash loops. */
async function settle(
  rule: Rule,
  def: ScenarioDef,
  records: { record: TickRecord }[],
  w: WatchdogTimings,
  b: BashTimings,
): Promise<void> {
  if (rule === "bash") {
    await sleep(2 * b.interval);
    return;
  }
  const deadline = performance.now() + Math.max(30_000, 2 * w.startupGrace);
  const from = records.length;
  let canaryOk = def.load.length === 0;
  while (performance.now() < deadline) {
    for (const { record } of records.slice(from)) {
      if (record.observation.canaryResults.some((c) => c.outcome === "ok")) canaryOk = true;
    }
    const last = records.at(-1)?.record;
    if (canaryOk && last?.verdict.state === "healthy") return;
    await sleep(Math.min(50, w.interval / 4));
  }
  throw new Error(`setup: the watchdog did not settle (state ${records.at(-1)?.record.verdict.state})`);
}

/** SIGKILLs any child process still running (a hanging fake nvidia-smi). */
function killChildren(): void {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid) process.kill(Number(name), "SIGKILL");
    } catch {
      // gone
    }
  }
}

// ── the orchestrator ──────────────────────────────────────────────────────────────────────────

interface Options {
  /** Profile ids, oldest first. */
  profiles: string[];
  rules: Rule[];
  runs: number;
  factor: number;
  jobs: number;
  only?: string[];
  full: boolean;
  scaled: boolean;
  json: boolean;
  /** Also write the JSON report to this file. */
  jsonOut?: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    profiles: OLLAMA_PROFILES.map((profile) => profile.id),
    rules: ["watchdog", "bash"],
    runs: 3,
    factor: 40,
    jobs: 4,
    full: true,
    scaled: true,
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === "--runs") options.runs = Math.max(1, Number(value()));
    else if (arg === "--factor") options.factor = Math.max(1, Number(value()));
    else if (arg === "--jobs") options.jobs = Math.max(1, Number(value()));
    else if (arg === "--only") options.only = value().split(",");
    else if (arg === "--profiles")
      options.profiles = value()
        .split(",")
        .map((id) => resolveProfile(id).id);
    else if (arg === "--rules") {
      const rules = value().split(",");
      const unknown = rules.filter((rule) => rule !== "watchdog" && rule !== "bash");
      if (unknown.length) throw new Error(`unknown rule(s) ${unknown.join(", ")}; known: watchdog, bash`);
      options.rules = rules as Rule[];
    } else if (arg === "--no-full") options.full = false;
    else if (arg === "--full-only") options.scaled = false;
    else if (arg === "--json") options.json = true;
    else if (arg === "--json-out") options.jsonOut = value();
    else if (arg === "--help" || arg === "-h") {
      process.stdout.write(
        "usage: node dist/bench/detection.js [--runs 3] [--factor 40] [--jobs 4] [--only F1,B1] [--profiles 0.12,0.33] [--rules watchdog,bash] [--no-full|--full-only] [--json] [--json-out FILE]\n",
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  if (options.only) {
    const unknown = options.only.filter((id) => !SCENARIOS.some((s) => s.id === id));
    if (unknown.length)
      throw new Error(
        `unknown scenario(s) ${unknown.join(", ")}; known: ${SCENARIOS.map((s) => s.id).join(", ")}`,
      );
  }
  return options;
}

const children = new Set<ChildProcess>();

function spawnJob(job: Job, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [process.argv[1] as string, "--worker", JSON.stringify(job)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      const line = out.trim().split("\n").at(-1) ?? "";
      try {
        resolve(JSON.parse(line) as RunResult);
      } catch {
        resolve({
          job,
          actions: [],
          wrong: 0,
          notes: [],
          wallMs: 0,
          error: `worker exited ${code ?? signal}: ${(err || out).trim().slice(-400)}`,
        });
      }
    });
  });
}

async function pool<T, R>(items: T[], size: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(size, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index] as T);
      }
    }),
  );
  return results;
}

const seconds = (ms: number, factor: number) => (ms * factor) / 1000;

function formatSpread(s: Spread | undefined, total: number, none: string): string {
  if (!s) return none;
  const digits = s.max < 10 ? 1 : 0;
  const f = (v: number) => v.toFixed(digits);
  const range = s.n > 1 ? ` (${f(s.min)}–${f(s.max)})` : "";
  const partial = s.n < total ? ` [${s.n}/${total}]` : "";
  return `${f(s.median)} s${range}${partial}`;
}

function summarizeActions(runs: RunResult[]): string {
  const sequences = runs.map((r) => {
    if (r.actions.length === 0) return "none";
    const parts: string[] = [];
    for (const a of r.actions) {
      const last = parts.at(-1);
      const match = last ? /^(.*?)(?: ×(\d+))?$/.exec(last) : null;
      if (match && match[1] === a.kind) parts[parts.length - 1] = `${a.kind} ×${Number(match[2] ?? 1) + 1}`;
      else parts.push(a.kind);
    }
    return parts.join(", ");
  });
  const distinct = [...new Set(sequences)];
  return distinct
    .map((s) => {
      const count = sequences.filter((x) => x === s).length;
      return distinct.length > 1 ? `${s} (${count}×)` : s;
    })
    .join(" / ");
}

interface Cell {
  detection?: Spread;
  recovery?: Spread;
  runs: number;
  actions: string;
  wrong: number[];
  notes: string[];
  errors: string[];
}

function aggregate(results: RunResult[], factor: number): Cell {
  const ok = results.filter((r) => !r.error);
  const notes = [...new Set(ok.flatMap((r) => r.notes))];
  return {
    detection: spread(
      ok.flatMap((r) => (r.detectionMs === undefined ? [] : [seconds(r.detectionMs, factor)])),
    ),
    recovery: spread(ok.flatMap((r) => (r.recoveryMs === undefined ? [] : [seconds(r.recoveryMs, factor)]))),
    runs: ok.length,
    actions: summarizeActions(ok),
    wrong: ok.map((r) => r.wrong),
    notes,
    errors: results.flatMap((r) => (r.error ? [r.error] : [])),
  };
}

function wrongText(wrong: number[]): string {
  const total = wrong.reduce((a, b) => a + b, 0);
  if (total === 0) return "0";
  return wrong.length > 1 ? `${total} (${wrong.join("+")})` : String(total);
}

function renderTable(
  results: RunResult[],
  factor: number,
  ids: string[],
  profile: string,
  rules: Rule[],
): string {
  const rows: string[][] = [];
  for (const id of ids) {
    const def = SCENARIOS.find((s) => s.id === id) as ScenarioDef;
    const cells = (rule: Rule) => {
      if (!rules.includes(rule)) return ["—", "—", "not run", "—"];
      const cell = aggregate(
        results.filter(
          (r) =>
            r.job.scenario === id &&
            r.job.rule === rule &&
            r.job.factor === factor &&
            r.job.profile === profile,
        ),
        factor,
      );
      const none = def.expect === "none" ? "—" : "never";
      return [
        formatSpread(cell.detection, cell.runs, none),
        def.heals ? formatSpread(cell.recovery, cell.runs, "never") : "—",
        cell.actions + (cell.errors.length ? ` ⚠ ${cell.errors.length} failed run(s)` : ""),
        wrongText(cell.wrong),
      ];
    };
    rows.push([
      def.row,
      `${id}: ${def.title}`,
      EXPECT_TEXT[def.expect],
      ...cells("watchdog"),
      ...cells("bash"),
    ]);
  }
  return markdownTable(
    [
      "row",
      "scenario",
      "right response",
      "watchdog: detect",
      "recover",
      "actions",
      "wrong",
      "bash rule: detect",
      "recover",
      "actions",
      "wrong",
    ],
    rows,
    ["l", "l", "l", "r", "r", "l", "r", "r", "r", "l", "r"],
  );
}

/**
 * One line per profile: how many failure rows got the right first action, F1's detection and
 * recovery, and the wrong actions over every scenario (watchdog only).
 */
function renderProfileSummary(
  results: RunResult[],
  factor: number,
  ids: string[],
  profiles: string[],
): string {
  const rows = profiles.map((profile) => {
    const mine = results.filter((r) => r.job.profile === profile && r.job.rule === "watchdog" && !r.error);
    const failureRows = ids.filter(
      (id) => (SCENARIOS.find((s) => s.id === id) as ScenarioDef).expect !== "none",
    );
    const right = failureRows.filter((id) => {
      const runs = mine.filter((r) => r.job.scenario === id);
      return runs.length > 0 && runs.every((r) => r.wrong === 0 && r.actions.length > 0);
    }).length;
    const f1 = aggregate(
      mine.filter((r) => r.job.scenario === "F1"),
      factor,
    );
    const wrong = mine.reduce((sum, r) => sum + r.wrong, 0);
    const failed = results.filter((r) => r.job.profile === profile && r.error).length;
    const version = resolveProfile(profile).version;
    return [
      `${profile} (${version})`,
      `${right}/${failureRows.length}`,
      formatSpread(f1.detection, f1.runs, "never"),
      formatSpread(f1.recovery, f1.runs, "never"),
      String(wrong),
      failed ? `${failed} failed run(s)` : "",
    ];
  });
  return markdownTable(
    ["Ollama profile", "failure rows answered right", "F1 detect", "F1 recover", "wrong actions", ""],
    rows,
    ["l", "r", "r", "r", "r", "l"],
  );
}

async function main(): Promise<void> {
  const workerIndex = process.argv.indexOf("--worker");
  if (workerIndex >= 0) {
    const job = JSON.parse(process.argv[workerIndex + 1] as string) as Job;
    let result: RunResult;
    try {
      result = await runJob(job);
    } catch (error) {
      result = { job, actions: [], wrong: 0, notes: [], wallMs: 0, error: (error as Error).message };
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  }

  const options = parseArgs(process.argv.slice(2));
  const ids = options.only ?? SCENARIOS.map((s) => s.id);
  const stopAll = () => {
    for (const child of children) child.kill("SIGKILL");
    process.exit(130);
  };
  process.once("SIGINT", stopAll);
  process.once("SIGTERM", stopAll);

  const startedWall = new Date();
  const loadBefore = loadavg();
  const began = performance.now();
  const progress = (text: string) => {
    process.stderr.write(`[${((performance.now() - began) / 1000).toFixed(0).padStart(4)} s] ${text}\n`);
  };

  const windowOf = (id: string) => (SCENARIOS.find((s) => s.id === id) as ScenarioDef).windowEq;
  const fullJobs: Job[] = options.full
    ? FULL_SCENARIOS.flatMap((scenario) =>
        options.rules.map((rule) => ({
          scenario,
          rule,
          profile: DEFAULT_PROFILE.id,
          factor: 1,
          run: 1,
          stopWhenRecovered: true,
        })),
      )
    : [];
  const fullDone = Promise.all(
    fullJobs.map((job) =>
      spawnJob(job, windowOf(job.scenario) + 180_000).then((r) => {
        progress(
          `${job.scenario} at default timings, ${job.rule}: ${r.error ?? `detection ${r.detectionMs !== undefined ? (r.detectionMs / 1000).toFixed(1) : "never"} s`}`,
        );
        return r;
      }),
    ),
  );

  const jobs: Job[] = [];
  if (options.scaled) {
    for (let run = 1; run <= options.runs; run++)
      for (const profile of options.profiles)
        for (const id of ids)
          for (const rule of options.rules)
            jobs.push({ scenario: id, rule, profile, factor: options.factor, run });
  }
  let finishedJobs = 0;
  const scaledResults = await pool(jobs, options.jobs, async (job) => {
    const result = await spawnJob(job, windowOf(job.scenario) / job.factor + 90_000);
    finishedJobs++;
    const what = result.error
      ? `FAILED ${result.error}`
      : `detection ${result.detectionMs === undefined ? "—" : `${seconds(result.detectionMs, job.factor).toFixed(0)} s`}, actions ${result.actions.map((a) => a.kind).join(",") || "none"}`;
    progress(
      `${finishedJobs}/${jobs.length} Ollama ${job.profile} ${job.scenario} ${job.rule} run ${job.run}: ${what}`,
    );
    return result;
  });
  const fullResults = await fullDone;
  const loadAfter = loadavg();
  const all = [...scaledResults, ...fullResults];

  const w = scaledWatchdog(options.factor);
  const b = scaledBash(options.factor);
  const meta = {
    date: startedWall.toISOString(),
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
    loadavg: { before: loadBefore, after: loadAfter },
    wallSeconds: Math.round((performance.now() - began) / 1000),
    factor: options.factor,
    profiles: options.profiles,
    rules: options.rules,
    runs: options.runs,
    jobs: options.jobs,
    watchdogTimingsMs: w,
    bashTimingsMs: b,
  };
  const json = `${JSON.stringify({ meta, results: all }, null, 2)}\n`;
  if (options.jsonOut) writeFileSync(options.jsonOut, json);
  if (options.json) {
    process.stdout.write(json);
    return;
  }
  const lines: string[] = [];
  lines.push(`# Detection benchmark — ${meta.date}`);
  lines.push("");
  lines.push(
    `Node ${meta.node}, ${meta.cpus}; load average ${loadBefore.map((v) => v.toFixed(2)).join(" ")} before, ${loadAfter.map((v) => v.toFixed(2)).join(" ")} after; ${meta.wallSeconds} s wall.`,
  );
  if (options.scaled) {
    lines.push("");
    lines.push(
      `## Scaled runs: every duration ÷ ${options.factor}, ${options.runs} run(s) each, ${options.jobs} at a time`,
    );
    lines.push("");
    lines.push(
      `Times are default-equivalent seconds (measured × ${options.factor}) after the fault: median (min–max); [k/n] = happened in k of n runs. ` +
        `Watchdog: interval ${w.interval} ms, freezeAfter ${w.freezeAfter} ms, canary every ${w.canaryEvery} ms / timeout ${w.canaryTimeout} ms, ` +
        `apiTimeout ${w.apiTimeout} ms, gpu.timeout ${w.gpuTimeout} ms, verifyWithin ${w.verifyWithin} ms, cooldown ${w.cooldown} ms. ` +
        `Bash rule: every ${b.interval} ms, GPU < ${b.gpuBelowPercent} % and no request for ${b.idle} ms, ${b.maxRestarts} per ${b.window} ms, ${b.cooldown} ms apart.`,
    );
    lines.push("");
    lines.push(`Ollama profiles (simulator): ${options.profiles.join(", ")}; the watchdog on each:`);
    lines.push("");
    lines.push(renderProfileSummary(scaledResults, options.factor, ids, options.profiles));
    for (const profile of options.profiles) {
      lines.push("");
      lines.push(`### Ollama ${profile} (simulates ${resolveProfile(profile).version})`);
      lines.push("");
      lines.push(renderTable(scaledResults, options.factor, ids, profile, options.rules));
      const notes = ids.flatMap((id) =>
        options.rules.flatMap((rule) => {
          const cell = aggregate(
            scaledResults.filter(
              (r) => r.job.scenario === id && r.job.rule === rule && r.job.profile === profile,
            ),
            options.factor,
          );
          return [
            ...cell.notes.map((n) => `${id} ${rule}: ${n}`),
            ...cell.errors.map((e) => `${id} ${rule}: FAILED RUN: ${e}`),
          ];
        }),
      );
      if (notes.length) {
        lines.push("");
        lines.push("<details><summary>per-run notes</summary>");
        lines.push("");
        for (const note of notes) lines.push(`- ${note}`);
        lines.push("");
        lines.push("</details>");
      }
    }
  }
  if (fullResults.length) {
    lines.push("");
    lines.push(`## At the default timings (no scaling), one run each, on Ollama ${DEFAULT_PROFILE.id}`);
    lines.push("");
    const rows = fullResults.map((r) => {
      const def = SCENARIOS.find((d) => d.id === r.job.scenario) as ScenarioDef;
      return [
        `${def.id}: ${def.title}`,
        r.job.rule === "watchdog" ? "watchdog (defaults)" : "bash rule (180 s, every 15 s)",
        r.error
          ? `failed: ${r.error}`
          : r.detectionMs === undefined
            ? "never"
            : `${(r.detectionMs / 1000).toFixed(1)} s`,
        r.recoveryMs === undefined ? "never" : `${(r.recoveryMs / 1000).toFixed(1)} s`,
        summarizeActions([r]),
        String(r.wrong),
        r.notes.filter((n) => n.startsWith("reason")).join("; "),
      ];
    });
    lines.push(
      markdownTable(
        ["scenario", "rule", "detect", "recover", "actions", "wrong", "why not (watchdog)"],
        rows,
        ["l", "l", "r", "r", "l", "r", "l"],
      ),
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`detection: ${(error as Error).stack ?? String(error)}\n`);
  for (const child of children) child.kill("SIGKILL");
  process.exit(1);
});
