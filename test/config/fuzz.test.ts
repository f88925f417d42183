import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dump as stringify } from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../src/config/load.js";
import { type Config, MAX_TIMER_MS } from "../../src/config/schema.js";
import { CLI_ARGV } from "../support/paths.js";
import { waitFor } from "../support/wait.js";

/**
 * Config fuzz (issue #11 M3): random and boundary values for every key, seeded. Each document is
 * either refused with `key.path: reason` naming a key that exists (exit 2 from `config check`), or
 * accepted with every duration a timer can hold and every relation the detector assumes; a few
 * accepted ones run as a real daemon for a couple of ticks.
 */
const SEED = Number(process.env.CONFIG_FUZZ_SEED ?? 20261129);
const CASES = 3000;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = mulberry32(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

const JUNK: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  "",
  " ",
  "x",
  [],
  {},
  ["a"],
  { a: 1 },
  "\n",
  "a\0b",
  "é".repeat(5000),
];
const DURATIONS = [
  "0ms",
  "1ms",
  "99ms",
  "100ms",
  "0.5s",
  "1s",
  "999ms",
  "15s",
  "60s",
  "5m",
  "1h",
  "24h",
  "1d",
  "24.8d",
  "24.9d",
  "30d",
  "365d",
  "1e3s",
  "-1s",
  "15",
  "15 s",
  "1.s",
  "99999999999999999999d",
  "60S",
];
const NUMBERS = [-1, 0, 0.05, 0.5, 1, 1.0001, 2, 3, 99, 100, 101, 1000, 1001, 1e308, -0, 0.1, 2 ** 53];
const STRINGS = [
  "ollama.service",
  "ollama",
  "ollama@gpu0.service",
  "a\nb",
  'x"); polkit.addRule(function(){return polkit.Result.YES;}); ("',
  "../../etc",
  "/abs/path",
  "rel/path",
  "nvidia-smi",
  "ollama serve",
  "",
  ".*",
  "(",
  "^$",
  "a|",
  "x".repeat(300),
];
const URLS = [
  "http://127.0.0.1:11434",
  "http://127.0.0.1:0",
  "http://127.0.0.1:65535",
  "http://127.0.0.1:65536",
  "https://h:1/sub/",
  "ftp://h:1",
  "http://u:p@h:1",
  "http://h:1/?q=1",
  "nope",
  "http://[::1]:11434",
  "http://h",
];
const LISTENS = [
  "127.0.0.1:0",
  "127.0.0.1:1",
  "127.0.0.1:65535",
  "127.0.0.1:65536",
  "127.0.0.1:99999",
  "[::1]:11464",
  "0.0.0.0:11464",
  "localhost:11464",
  ":80",
  "host",
  "a b:1",
];

type Gen = () => unknown;
const duration: Gen = () => (random() < 0.85 ? pick(DURATIONS) : pick(JUNK));
const number: Gen = () => (random() < 0.85 ? pick(NUMBERS) : pick(JUNK));
const string: Gen = () => (random() < 0.85 ? pick(STRINGS) : pick(JUNK));

/** Every leaf key of DESIGN.md §6 and a generator of values for it. */
const LEAVES: [string, Gen][] = [
  ["interval", duration],
  ["listen", () => (random() < 0.85 ? pick(LISTENS) : pick(JUNK))],
  ["stateDir", string],
  ["textfile", string],
  ["procRoot", string],
  ["targets.0.name", () => pick(["a", "default", ".", "..", "a/b", "a b", "x".repeat(65), ...STRINGS])],
  ["targets.0.url", () => (random() < 0.85 ? pick(URLS) : pick(JUNK))],
  ["targets.0.restart.systemd.unit", string],
  ["targets.0.restart.docker.container", string],
  ["targets.0.restart.docker.socket", string],
  ["targets.0.restart.docker.timeout", duration],
  [
    "targets.0.restart.command.argv",
    () => pick([["/bin/true"], [], [""], ["/bin/x", ""], ["a\0b"], "x", [1]]),
  ],
  ["targets.0.restart.command.timeout", duration],
  ["targets.0.processes.server", string],
  ["targets.0.processes.runner", string],
  ["targets.0.journalUnit", string],
  ["detection.apiTimeout", duration],
  ["detection.downAfter", number],
  ["detection.freezeAfter", duration],
  ["detection.gpuBusyAbove", number],
  ["detection.startupGrace", duration],
  ["detection.loadGrace", duration],
  ["detection.canary.every", duration],
  ["detection.canary.timeout", duration],
  ["detection.canary.prompt", string],
  [
    "remediation.ladder",
    () => pick([["kill-runner"], ["restart"], [], ["restart", "restart"], ["x"], "restart", null]),
  ],
  ["remediation.cooldown", duration],
  ["remediation.budget.max", number],
  ["remediation.budget.window", duration],
  ["remediation.verifyWithin", duration],
  ["remediation.dryRun", () => pick([true, false, "yes", 1, null])],
  ["gpu.backend", () => pick(["auto", "nvidia", "rocm", "none", "cuda", "", null])],
  ["gpu.nvidiaSmi", string],
  ["gpu.rocmSmi", string],
  ["gpu.timeout", duration],
];
const KNOWN = LEAVES.map(([path]) => path);

function set(document: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let node: Record<string, unknown> = document;
  for (const [i, key] of keys.slice(0, -1).entries()) {
    const nextIsIndex = /^\d+$/.test(keys[i + 1] as string);
    if (typeof node[key] !== "object" || node[key] === null) node[key] = nextIsIndex ? [] : {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys.at(-1) as string] = value;
}

function randomDocument(): Record<string, unknown> {
  const document: Record<string, unknown> = {};
  if (random() < 0.7) set(document, "targets.0", { name: "a", url: "http://127.0.0.1:11434" });
  const n = 1 + Math.floor(random() * 4);
  for (let i = 0; i < n; i++) {
    const [path, gen] = pick(LEAVES);
    if (path.startsWith("targets.0.restart.")) set(document, "targets.0.restart", {});
    set(document, path, gen());
  }
  if (random() < 0.05) set(document, pick(["bogus", "detection.bogus", "targets.0.bogus"]), 1);
  return document;
}

const NON_ZERO_DURATIONS = (c: Config): number[] => [
  c.interval,
  c.detection.apiTimeout,
  c.detection.freezeAfter,
  c.detection.canary.every,
  c.detection.canary.timeout,
  c.remediation.budget.window,
  c.remediation.verifyWithin,
  c.gpu.timeout,
  ...c.targets.flatMap((t) =>
    [t.restart.docker?.timeout, t.restart.command?.timeout].filter((x) => x !== undefined),
  ),
];

function assertBehaves(c: Config): void {
  for (const ms of NON_ZERO_DURATIONS(c)) expect(ms > 0 && ms <= MAX_TIMER_MS).toBe(true);
  for (const ms of [c.detection.startupGrace, c.detection.loadGrace, c.remediation.cooldown])
    expect(ms >= 0 && ms <= MAX_TIMER_MS).toBe(true);
  expect(c.detection.canary.timeout).toBeLessThan(c.detection.freezeAfter);
  expect(c.remediation.verifyWithin).toBeGreaterThan(c.detection.canary.timeout);
  expect(c.remediation.budget.window).toBeGreaterThanOrEqual(c.remediation.cooldown);
  const port = Number(c.listen.slice(c.listen.lastIndexOf(":") + 1));
  expect(port >= 0 && port <= 65535).toBe(true);
  for (const t of c.targets) {
    const url = new URL(t.url);
    expect(["http:", "https:"]).toContain(url.protocol);
    expect(url.port === "" || (Number(url.port) >= 1 && Number(url.port) <= 65535)).toBe(true);
    expect([".", ".."]).not.toContain(t.name);
    expect(new RegExp(t.processes.runner).test("")).toBe(false);
    for (const unit of [t.restart.systemd?.unit, t.journalUnit])
      if (unit) expect(unit).not.toMatch(/[\s"'\\;]/);
  }
  expect(Number.isInteger(c.detection.downAfter) && c.detection.downAfter >= 1).toBe(true);
  expect(c.detection.gpuBusyAbove >= 0 && c.detection.gpuBusyAbove <= 1).toBe(true);
}

const accepted: Record<string, unknown>[] = [];
const refused: Record<string, unknown>[] = [];

describe(`config fuzz (seed ${SEED}, ${CASES} documents)`, () => {
  it("refuses with `key.path: reason` for a key that exists, or accepts a config the detector can run", () => {
    for (let i = 0; i < CASES; i++) {
      const document = randomDocument();
      let config: Config;
      try {
        config = parseConfig(document, {});
      } catch (error) {
        if (!(error instanceof ConfigError))
          throw new Error(`case ${i}: ${JSON.stringify(document)} threw ${error}`);
        expect(error.problems.length).toBeGreaterThan(0);
        for (const problem of error.problems) {
          const match = /^([A-Za-z0-9_.]+|\(root\)): (.+)$/s.exec(problem);
          expect(match, `case ${i}: ${problem}`).not.toBeNull();
          const path = String(match?.[1])
            .replace(/\.(\d+)\./g, ".0.")
            .replace(/\.\d+$/, "");
          const known =
            path === "(root)" ||
            KNOWN.some((k) => k === path || k.startsWith(`${path}.`) || path.startsWith(`${k}.`));
          expect(known || /bogus$/.test(path), `case ${i}: unknown path in ${problem}`).toBe(true);
        }
        refused.push(document);
        continue;
      }
      assertBehaves(config);
      accepted.push(document);
    }
    // Both outcomes are exercised, not only one of them.
    expect(accepted.length).toBeGreaterThan(CASES / 20);
    expect(refused.length).toBeGreaterThan(CASES / 4);
  });

  it("`config check` exits 2 naming the key for refused documents and 0 for accepted ones", () => {
    const dir = mkdtempSync(join(tmpdir(), "owd-fuzz-check-"));
    try {
      const [node, cli] = CLI_ARGV as [string, string];
      const sample = [...refused.slice(0, 6), ...accepted.slice(0, 2)];
      for (const [i, document] of sample.entries()) {
        const file = join(dir, `c${i}.yaml`);
        writeFileSync(file, stringify(document));
        const result = spawnSync(node, [cli, "config", "check", file], { encoding: "utf8", timeout: 20_000 });
        const expected = i < Math.min(6, refused.length) ? 2 : 0;
        expect(result.status, `${JSON.stringify(document)}\n${result.stderr}`).toBe(expected);
        expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe("accepted configs run", () => {
    const children: ChildProcess[] = [];
    const dirs: string[] = [];
    afterAll(() => {
      for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    it("a few accepted random configs start, tick and stop cleanly", async () => {
      const runnable = accepted
        .map((document) => ({ document, config: parseConfig(document, {}) }))
        .filter(({ config }) => config.interval <= 1000)
        .slice(0, 3);
      expect(runnable.length).toBe(3);
      const [node, cli] = CLI_ARGV as [string, string];
      for (const { document } of runnable) {
        const dir = mkdtempSync(join(tmpdir(), "owd-fuzz-run-"));
        dirs.push(dir);
        // Only what would touch this machine is pinned: the port, the state, an unreachable Ollama
        // and a dry run (nothing is restarted or killed); every other key keeps its random value.
        const safe = structuredClone(document) as Record<string, unknown>;
        safe.listen = "127.0.0.1:0";
        safe.stateDir = join(dir, "state");
        safe.textfile = null;
        safe.procRoot = "/proc";
        set(safe, "remediation.dryRun", true);
        set(safe, "gpu.backend", "none");
        set(safe, "targets", [
          { name: "fuzz", url: "http://127.0.0.1:1", restart: { command: { argv: ["/bin/true"] } } },
        ]);
        const file = join(dir, "config.yaml");
        writeFileSync(file, stringify(safe));
        const child = spawn(node, [cli, "run", "--config", file], { stdio: ["ignore", "pipe", "pipe"] });
        children.push(child);
        let output = "";
        child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
        child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
        const base = await waitFor(() => /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1], {
          timeoutMs: 15_000,
          what: `the start line of ${JSON.stringify(safe)}: ${output}`,
        });
        const ticks = async () => {
          const status = (await (await fetch(`${base}/api/status`)).json()) as { lastTickAt?: string };
          return status.lastTickAt;
        };
        const first = await waitFor(ticks, { timeoutMs: 15_000, what: "a first tick" });
        await waitFor(async () => (await ticks()) !== first, { timeoutMs: 15_000, what: "a second tick" });
        expect((await fetch(`${base}/healthz`)).status).toBe(200);
        child.kill("SIGTERM");
        const code = await new Promise((resolve) => child.once("exit", resolve));
        expect(code).toBe(0);
        expect(output).not.toMatch(/TimeoutOverflowWarning|"level":"(error|fatal)"/);
      }
    });
  });
});
