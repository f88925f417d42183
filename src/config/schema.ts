import * as v from "valibot";
import { notifySchema } from "../notify/schema.js";
import { parseDuration } from "./duration.js";

/** A duration string ("60s") parsed into milliseconds. */
const duration = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const ms = parseDuration(dataset.value);
    if (ms === undefined) {
      addIssue({ message: `expected a duration like "60s", got "${dataset.value}"` });
      return NEVER;
    }
    return ms;
  }),
);

const ratio = v.pipe(v.number(), v.minValue(0), v.maxValue(1));
const nonEmpty = v.pipe(v.string(), v.minLength(1, "must not be empty"));
const count = (min: number) => v.pipe(v.number(), v.integer("expected a whole number"), v.minValue(min));

const regex = v.pipe(
  v.string(),
  v.check((text) => {
    try {
      new RegExp(text);
      return true;
    } catch {
      return false;
    }
  }, "not a valid regular expression"),
);

const restartSchema = v.pipe(
  v.strictObject({
    systemd: v.optional(v.strictObject({ unit: nonEmpty })),
    docker: v.optional(
      v.strictObject({
        container: nonEmpty,
        socket: v.optional(nonEmpty, "/var/run/docker.sock"),
        timeout: v.optional(duration, "60s"),
      }),
    ),
    command: v.optional(
      v.strictObject({
        argv: v.pipe(v.array(v.string()), v.minLength(1, "argv needs at least the program")),
        timeout: v.optional(duration, "60s"),
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

const DEFAULT_PROCESSES = {
  server: "ollama serve",
  runner: "ollama runner|ollama_llama_server|llama-server",
};

const targetSchema = v.strictObject({
  name: v.pipe(
    v.string(),
    v.regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-' only (it is used in URLs and labels)"),
  ),
  url: v.pipe(v.string(), v.url("expected a URL like http://127.0.0.1:11434")),
  restart: v.optional(restartSchema, { systemd: { unit: "ollama.service" } }),
  processes: v.optional(
    v.strictObject({
      server: v.optional(regex, DEFAULT_PROCESSES.server),
      runner: v.optional(regex, DEFAULT_PROCESSES.runner),
    }),
    DEFAULT_PROCESSES,
  ),
  /** systemd unit whose journal is read for completions and GPU errors; defaults to restart.systemd.unit. */
  journalUnit: v.optional(v.nullable(v.string())),
});

export function configSchema(env: NodeJS.ProcessEnv = process.env) {
  return v.strictObject({
    interval: v.optional(duration, "15s"),
    listen: v.optional(
      v.pipe(v.string(), v.regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'expected "host:port"')),
      "127.0.0.1:11464",
    ),
    stateDir: v.optional(nonEmpty, "/var/lib/ollama-watchdog"),
    textfile: v.optional(v.nullable(nonEmpty), null),
    procRoot: v.optional(nonEmpty, "/proc"),
    targets: v.optional(
      v.pipe(
        v.array(targetSchema),
        v.minLength(1, "at least one target"),
        v.check(
          (targets) => new Set(targets.map((t) => t.name)).size === targets.length,
          "target names must be unique",
        ),
      ),
      () => [{ name: "default", url: urlFromOllamaHost(env.OLLAMA_HOST) }],
    ),
    detection: v.optional(
      v.strictObject({
        apiTimeout: v.optional(duration, "5s"),
        downAfter: v.optional(count(1), 3),
        freezeAfter: v.optional(duration, "60s"),
        gpuBusyAbove: v.optional(ratio, 0.05),
        startupGrace: v.optional(duration, "120s"),
        loadGrace: v.optional(duration, "5m"),
        canary: v.optional(
          v.strictObject({
            every: v.optional(duration, "60s"),
            timeout: v.optional(duration, "30s"),
            prompt: v.optional(nonEmpty, "hi"),
          }),
          {},
        ),
      }),
      {},
    ),
    remediation: v.optional(
      v.strictObject({
        ladder: v.optional(
          v.pipe(v.array(v.picklist(["kill-runner", "restart"])), v.minLength(1, "at least one rung")),
          ["kill-runner", "restart"],
        ),
        cooldown: v.optional(duration, "60s"),
        budget: v.optional(
          v.strictObject({ max: v.optional(count(0), 3), window: v.optional(duration, "1h") }),
          {},
        ),
        verifyWithin: v.optional(duration, "120s"),
        dryRun: v.optional(v.boolean(), false),
      }),
      {},
    ),
    gpu: v.optional(
      v.strictObject({
        backend: v.optional(v.picklist(["auto", "nvidia", "rocm", "none"]), "auto"),
        nvidiaSmi: v.optional(nonEmpty, "nvidia-smi"),
        rocmSmi: v.optional(nonEmpty, "rocm-smi"),
        timeout: v.optional(duration, "10s"),
      }),
      {},
    ),
    notify: v.optional(notifySchema(duration), {}),
  });
}

export type Config = v.InferOutput<ReturnType<typeof configSchema>>;
export type TargetConfig = Config["targets"][number];
