import * as v from "valibot";
import { notifySchema } from "../notify/schema.js";
import { formatDuration, parseDuration } from "./duration.js";
import { isUnitName, UNIT_NAME_RULE } from "./names.js";

/**
 * Every key has its range here, and the relations the detector and the loop rely on are checked
 * at the end (`relations`); docs/configuration.md lists them for the operator.
 */

/** Node's timers overflow above 2^31 − 1 ms (≈ 24.8 days) and then fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

function describeMs(ms: number): string {
  if (ms === MAX_TIMER_MS) return "24.8d (the longest timer Node can set)";
  if (ms >= DAY && ms % DAY === 0) return `${ms / DAY}d`;
  return ms < MINUTE && ms % SECOND !== 0 && ms > SECOND ? `${ms / SECOND}s` : formatDuration(ms);
}

/** A duration string ("60s") parsed into milliseconds, within [min, max]. */
function duration(min: number, max: number = MAX_TIMER_MS) {
  return v.pipe(
    v.unknown(),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const text = dataset.value;
      const ms = typeof text === "string" ? parseDuration(text) : undefined;
      if (ms === undefined || !Number.isFinite(ms)) {
        addIssue({ message: `expected a duration like "60s", got ${JSON.stringify(text)}` });
        return NEVER;
      }
      if (ms < min || ms > max) {
        const range =
          min === 0 ? `at most ${describeMs(max)}` : `between ${describeMs(min)} and ${describeMs(max)}`;
        addIssue({ message: `must be ${range}, got "${text}"` });
        return NEVER;
      }
      return ms;
    }),
  );
}

function integer(min: number, max: number) {
  return v.pipe(
    v.number(),
    v.check(
      (n) => Number.isInteger(n) && n >= min && n <= max,
      `expected a whole number from ${min} to ${max}`,
    ),
  );
}

const ratio = v.pipe(
  v.number(),
  v.check((n) => Number.isFinite(n) && n >= 0 && n <= 1, "expected a number from 0 to 1"),
);

/** A string passed to the OS (path, argv element): NUL would truncate it or make the call throw. */
function text(maxLength = 4096) {
  return v.pipe(
    v.string(),
    v.minLength(1, "must not be empty"),
    v.maxLength(maxLength, `at most ${maxLength} characters`),
    v.check((s) => !s.includes("\0"), "must not contain a NUL character"),
  );
}

const absolutePath = v.pipe(
  text(),
  v.check((s) => s.startsWith("/"), "expected an absolute path"),
  // It is written into the systemd unit (ReadWritePaths) by `install`: a newline would be a directive.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  v.check((s) => !/[\x00-\x1f\x7f]/.test(s), "must not contain control characters"),
);

const unitName = v.pipe(v.string(), v.check(isUnitName, UNIT_NAME_RULE));

/** Docker's container name grammar (daemon/names: [a-zA-Z0-9][a-zA-Z0-9_.-]+), or an id. */
const containerName = v.pipe(
  v.string(),
  v.regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/,
    "expected a Docker container name or id ([A-Za-z0-9][A-Za-z0-9_.-]*)",
  ),
);

/** Command lines no Ollama pattern has any business matching: one that matches them all matches anything. */
const UNRELATED_COMMAND_LINES = ["a", "1", "/sbin/init", "sshd: root@pts/0", "-bash"];
/** Processes every Linux host runs: a pattern that matches one of them (`[a-z]`, `s`) is far too wide. */
const SYSTEM_COMMAND_LINES = ["/sbin/init", "/usr/lib/systemd/systemd-journald", "sshd: root@pts/0", "-bash"];

/** A process pattern: a valid regex that does not match everything (it decides what may be killed). */
const processPattern = v.pipe(
  v.string(),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    let pattern: RegExp;
    try {
      pattern = new RegExp(dataset.value);
    } catch {
      addIssue({ message: "not a valid regular expression" });
      return;
    }
    if (pattern.test(""))
      addIssue({ message: "matches every process (it must not match an empty command line)" });
    else if (UNRELATED_COMMAND_LINES.every((line) => pattern.test(line)))
      addIssue({
        message: `matches every process (it matches ${UNRELATED_COMMAND_LINES.map((l) => `"${l}"`).join(", ")})`,
      });
    else {
      const system = SYSTEM_COMMAND_LINES.find((line) => pattern.test(line));
      if (system !== undefined)
        addIssue({ message: `matches processes that are not Ollama's (it matches "${system}")` });
    }
  }),
);

const restartSchema = v.pipe(
  v.strictObject({
    systemd: v.optional(v.strictObject({ unit: unitName })),
    docker: v.optional(
      v.strictObject({
        container: containerName,
        socket: v.optional(absolutePath, "/var/run/docker.sock"),
        timeout: v.optional(duration(SECOND, HOUR), "60s"),
      }),
    ),
    command: v.optional(
      v.strictObject({
        argv: v.pipe(
          v.array(
            v.pipe(
              v.string(),
              v.maxLength(4096),
              v.check((s) => !s.includes("\0"), "must not contain a NUL character"),
            ),
          ),
          v.check((argv) => argv.length === 0 || argv[0] !== "", "the program (argv[0]) must not be empty"),
          v.minLength(1, "argv needs at least the program"),
          v.maxLength(256, "at most 256 arguments"),
        ),
        timeout: v.optional(duration(SECOND, HOUR), "60s"),
      }),
    ),
  }),
  v.check(
    (r) => [r.systemd, r.docker, r.command].filter(Boolean).length === 1,
    "expected exactly one of systemd, docker, command",
  ),
);

const DEFAULT_URL = "http://127.0.0.1:11434";

/** OLLAMA_HOST may be "host:port", "0.0.0.0", or a URL. */
export function urlFromOllamaHost(host: string | undefined): string {
  if (!host) return DEFAULT_URL;
  const withScheme = /^https?:\/\//.test(host) ? host : `http://${host}`;
  const url = new URL(withScheme);
  if (!url.port) url.port = "11434";
  if (url.hostname === "0.0.0.0") url.hostname = "127.0.0.1";
  return url.origin;
}

/** Ollama's base URL: http(s), port 1–65535, no credentials (they would be shown in status and logs). */
const ollamaUrl = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    let url: URL;
    try {
      url = new URL(dataset.value);
    } catch {
      addIssue({ message: `expected a URL like ${DEFAULT_URL}, got ${JSON.stringify(dataset.value)}` });
      return NEVER;
    }
    const problem =
      url.protocol !== "http:" && url.protocol !== "https:"
        ? "expected http:// or https://"
        : url.username || url.password
          ? "must not contain credentials (they would be shown in /api/status, logs and incident reports)"
          : url.search || url.hash
            ? "must not have a query or fragment"
            : url.port === "0"
              ? "port must be from 1 to 65535"
              : undefined;
    if (problem) {
      addIssue({ message: problem });
      return NEVER;
    }
    return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
  }),
);

/** "host:port"; port 0 means any free port (tests use it), else 1–65535. */
const listenAddress = v.pipe(
  v.string(),
  v.regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected "host:port", e.g. "127.0.0.1:11464"'),
  v.check(
    (s) => Number(s.slice(s.lastIndexOf(":") + 1)) <= 65535,
    "port must be from 1 to 65535 (0: any free port)",
  ),
);

const DEFAULT_PROCESSES = {
  server: "ollama serve",
  runner: "ollama runner|ollama_llama_server|llama-server",
};

/** The stall guard in front of a target (docs/proxy.md); absent = no proxy. */
const proxySchema = v.strictObject({
  listen: listenAddress,
  holdFor: v.optional(duration(0, DAY), "60s"),
  maxTokenGap: v.optional(v.nullable(duration(100, DAY)), null),
});

const targetSchema = v.strictObject({
  name: v.pipe(
    v.string(),
    v.regex(
      /^[A-Za-z0-9_.-]{1,64}$/,
      "1 to 64 letters, digits, '_', '.', '-' (it is used in URLs and labels)",
    ),
    v.check(
      (name) => name !== "." && name !== "..",
      "'.' and '..' are not names (they are path segments in URLs)",
    ),
  ),
  url: ollamaUrl,
  restart: v.optional(restartSchema, { systemd: { unit: "ollama.service" } }),
  processes: v.optional(
    v.strictObject({
      server: v.optional(processPattern, DEFAULT_PROCESSES.server),
      runner: v.optional(processPattern, DEFAULT_PROCESSES.runner),
    }),
    DEFAULT_PROCESSES,
  ),
  /** systemd unit whose journal is read for completions and GPU errors; defaults to restart.systemd.unit. */
  journalUnit: v.optional(v.nullable(unitName)),
  proxy: v.optional(proxySchema),
});

const sectionsSchema = (env: NodeJS.ProcessEnv) =>
  v.strictObject({
    interval: v.optional(duration(100, HOUR), "15s"),
    listen: v.optional(listenAddress, "127.0.0.1:11464"),
    stateDir: v.optional(absolutePath, "/var/lib/ollama-watchdog"),
    textfile: v.optional(v.nullable(absolutePath), null),
    /** TLS and basic auth for the HTTP endpoints: a Prometheus-exporter web-config file (docs/fleet.md). */
    webConfig: v.optional(v.nullable(text()), null),
    procRoot: v.optional(text(), "/proc"),
    targets: v.optional(
      v.pipe(
        v.array(targetSchema),
        v.minLength(1, "at least one target"),
        v.maxLength(64, "at most 64 targets"),
        v.check(
          (targets) => new Set(targets.map((t) => t.name)).size === targets.length,
          "target names must be unique",
        ),
        v.check((targets) => {
          const listens = targets.flatMap((t) => (t.proxy ? [t.proxy.listen] : []));
          return new Set(listens).size === listens.length;
        }, "proxy.listen must differ between targets"),
      ),
      () => [{ name: "default", url: urlFromOllamaHost(env.OLLAMA_HOST) }],
    ),
    detection: v.optional(
      v.strictObject({
        apiTimeout: v.optional(duration(100, MINUTE), "5s"),
        downAfter: v.optional(integer(1, 100), 3),
        freezeAfter: v.optional(duration(200, DAY), "60s"),
        gpuBusyAbove: v.optional(ratio, 0.05),
        startupGrace: v.optional(duration(0, DAY), "120s"),
        loadGrace: v.optional(duration(0, DAY), "5m"),
        canary: v.optional(
          v.strictObject({
            every: v.optional(duration(100, DAY), "60s"),
            timeout: v.optional(duration(100, HOUR), "30s"),
            prompt: v.optional(
              v.pipe(v.string(), v.minLength(1, "must not be empty"), v.maxLength(1000)),
              "hi",
            ),
          }),
          {},
        ),
      }),
      {},
    ),
    remediation: v.optional(
      v.strictObject({
        ladder: v.optional(
          v.pipe(
            v.array(v.picklist(["kill-runner", "restart"])),
            v.minLength(1, "at least one step"),
            v.check((steps) => new Set(steps).size === steps.length, "each step at most once"),
          ),
          ["kill-runner", "restart"],
        ),
        cooldown: v.optional(duration(0, DAY), "60s"),
        budget: v.optional(
          v.strictObject({
            max: v.optional(integer(0, 1000), 3),
            window: v.optional(duration(SECOND), "1h"),
          }),
          {},
        ),
        verifyWithin: v.optional(duration(100, DAY), "120s"),
        drainFor: v.optional(duration(0, HOUR), "0s"),
        dryRun: v.optional(v.boolean(), false),
      }),
      {},
    ),
    gpu: v.optional(
      v.strictObject({
        backend: v.optional(v.picklist(["auto", "nvidia", "rocm", "none"]), "auto"),
        nvidiaSmi: v.optional(text(), "nvidia-smi"),
        rocmSmi: v.optional(text(), "rocm-smi"),
        timeout: v.optional(duration(100, MINUTE), "10s"),
      }),
      {},
    ),
    notify: v.optional(notifySchema(duration), {}),
    /** Peer watchdogs shown by `status` and the live page's fleet panel (docs/fleet.md). */
    fleet: v.optional(
      v.pipe(
        v.array(
          v.strictObject({
            name: v.optional(
              v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,64}$/, "1 to 64 letters, digits, '_', '.', '-'")),
            ),
            url: ollamaUrl,
            /** For a peer whose webConfig asks for basic auth: the user and a file holding the password. */
            basicAuth: v.optional(v.strictObject({ username: text(64), passwordFile: text() })),
          }),
        ),
        v.maxLength(256, "at most 256 peers"),
      ),
      [],
    ),
  });

type Sections = v.InferOutput<ReturnType<typeof sectionsSchema>>;

/**
 * The watchdog's liveness window (/healthz): a tick must have finished within it. Three intervals,
 * at least 10 s, and always room for the slowest tick the config allows (the wait of one interval,
 * the API calls, their 2 s margin, up to half an interval for the GPU), so that a merely slow API
 * never reads as a stuck loop.
 */
export function loopLivenessMs(intervalMs: number, apiTimeoutMs: number): number {
  return Math.max(3 * intervalMs, 10_000, intervalMs + apiTimeoutMs + 2000 + intervalMs / 2);
}

/** Relations between keys that the detector and the loop assume; each names the key to change. */
const relations: [string[], (c: Sections) => string | undefined][] = [
  [
    ["detection", "canary", "timeout"],
    (c) =>
      c.detection.canary.timeout < c.detection.freezeAfter
        ? undefined
        : `must be shorter than detection.freezeAfter (${describeMs(c.detection.freezeAfter)}): a canary still waiting cannot prove a freeze`,
  ],
  [
    ["remediation", "verifyWithin"],
    (c) =>
      c.remediation.verifyWithin > c.detection.canary.timeout
        ? undefined
        : `must be longer than detection.canary.timeout (${describeMs(c.detection.canary.timeout)}): the verifying canary gets that long to answer`,
  ],
  [
    ["remediation", "budget", "window"],
    (c) =>
      c.remediation.budget.window >= c.remediation.cooldown
        ? undefined
        : `must be at least remediation.cooldown (${describeMs(c.remediation.cooldown)}): a shorter window lets actions escape the budget`,
  ],
];

export function configSchema(env: NodeJS.ProcessEnv = process.env) {
  return v.pipe(
    sectionsSchema(env),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      for (const [path, problem] of relations) {
        const message = problem(dataset.value);
        if (message) addIssue({ message, path: issuePath(dataset.value, path) });
      }
    }),
  );
}

/** A valibot issue path for a key of the document (load.ts reads only each item's `key`). */
function issuePath(input: unknown, keys: string[]): [v.IssuePathItem, ...v.IssuePathItem[]] {
  const items = keys.map((key) => ({
    type: "object" as const,
    origin: "value" as const,
    input: input as Record<string, unknown>,
    key,
    value: undefined,
  }));
  return items as [v.IssuePathItem, ...v.IssuePathItem[]];
}

export type Config = v.InferOutput<ReturnType<typeof configSchema>>;
export type TargetConfig = Config["targets"][number];
