import { z } from "zod";
import { parseDuration } from "./duration.js";

/** A duration string ("60s") parsed into milliseconds. */
const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: "custom", message: `expected a duration like "60s", got "${text}"` });
    return z.NEVER;
  }
  return ms;
});

const ratio = z.number().min(0).max(1);

const restartSchema = z
  .strictObject({
    systemd: z.strictObject({ unit: z.string().min(1) }).optional(),
    docker: z
      .strictObject({
        container: z.string().min(1),
        socket: z.string().min(1).prefault("/var/run/docker.sock"),
        timeout: duration.prefault("60s"),
      })
      .optional(),
    command: z
      .strictObject({
        argv: z.array(z.string()).min(1, "argv needs at least the program"),
        timeout: duration.prefault("60s"),
      })
      .optional(),
  })
  .refine((r) => [r.systemd, r.docker, r.command].filter(Boolean).length === 1, {
    message: "expected exactly one of systemd, docker, command",
  });

const regex = z.string().refine(
  (text) => {
    try {
      new RegExp(text);
      return true;
    } catch {
      return false;
    }
  },
  { message: "not a valid regular expression" },
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

const targetSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-' only (it is used in URLs and labels)"),
  url: z.url(),
  restart: restartSchema.prefault({ systemd: { unit: "ollama.service" } }),
  processes: z
    .strictObject({
      server: regex.prefault("ollama serve"),
      runner: regex.prefault("ollama runner|ollama_llama_server|llama-server"),
    })
    .prefault({ server: "ollama serve", runner: "ollama runner|ollama_llama_server|llama-server" }),
  /** systemd unit whose journal is read for completions and GPU errors; defaults to restart.systemd.unit. */
  journalUnit: z.string().nullable().optional(),
});

export function configSchema(env: NodeJS.ProcessEnv = process.env) {
  return z.strictObject({
    interval: duration.prefault("15s"),
    listen: z
      .string()
      .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'expected "host:port"')
      .prefault("127.0.0.1:11464"),
    stateDir: z.string().min(1).prefault("/var/lib/ollama-watchdog"),
    textfile: z.string().min(1).nullable().prefault(null),
    procRoot: z.string().min(1).prefault("/proc"),
    targets: z
      .array(targetSchema)
      .min(1)
      .prefault([{ name: "default", url: urlFromOllamaHost(env.OLLAMA_HOST) }])
      .refine((targets) => new Set(targets.map((t) => t.name)).size === targets.length, {
        message: "target names must be unique",
      }),
    detection: z
      .strictObject({
        apiTimeout: duration.prefault("5s"),
        downAfter: z.number().int().min(1).prefault(3),
        freezeAfter: duration.prefault("60s"),
        gpuBusyAbove: ratio.prefault(0.05),
        startupGrace: duration.prefault("120s"),
        loadGrace: duration.prefault("5m"),
        canary: z
          .strictObject({
            every: duration.prefault("60s"),
            timeout: duration.prefault("30s"),
            prompt: z.string().min(1).prefault("hi"),
          })
          .prefault({}),
      })
      .prefault({}),
    remediation: z
      .strictObject({
        ladder: z
          .array(z.enum(["kill-runner", "restart"]))
          .min(1)
          .prefault(["kill-runner", "restart"]),
        cooldown: duration.prefault("60s"),
        budget: z
          .strictObject({ max: z.number().int().min(0).prefault(3), window: duration.prefault("1h") })
          .prefault({}),
        verifyWithin: duration.prefault("120s"),
        drainFor: duration.prefault("0s"),
        dryRun: z.boolean().prefault(false),
      })
      .prefault({}),
    gpu: z
      .strictObject({
        backend: z.enum(["auto", "nvidia", "rocm", "none"]).prefault("auto"),
        nvidiaSmi: z.string().min(1).prefault("nvidia-smi"),
        rocmSmi: z.string().min(1).prefault("rocm-smi"),
        timeout: duration.prefault("10s"),
      })
      .prefault({}),
  });
}

export type Config = z.output<ReturnType<typeof configSchema>>;
export type TargetConfig = Config["targets"][number];
