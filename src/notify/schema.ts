import * as v from "valibot";

/** The configuration's duration schema ("60s" → ms, within [min, max]), passed in by src/config/schema.ts. */
export type DurationSchema = (min: number, max?: number) => v.GenericSchema<unknown, number>;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const NOTICE_KINDS = ["detected", "action", "healed", "exhausted", "digest"] as const;

const nonEmpty = v.pipe(v.string(), v.minLength(1, "must not be empty"));
const count = (min: number, max: number) =>
  v.pipe(
    v.number(),
    v.check(
      (n) => Number.isInteger(n) && n >= min && n <= max,
      `expected a whole number from ${min} to ${max}`,
    ),
  );
const httpUrl = v.pipe(v.string(), v.regex(/^https?:\/\/\S+$/, "expected an http:// or https:// URL"));
const envName = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an environment variable name"),
);

/**
 * A secret in a file or an environment variable — `<key>File` or `<key>Env` — and, where the
 * value may also sit in the config file (a URL), `<key>` itself. Files and variables keep it out
 * of the config file; the watchdog never logs it.
 */
function secretKeys<K extends string>(key: K) {
  return {
    [`${key}File`]: v.optional(nonEmpty),
    [`${key}Env`]: v.optional(envName),
  } as { [P in `${K}File`]: v.OptionalSchema<typeof nonEmpty, undefined> } & {
    [P in `${K}Env`]: v.OptionalSchema<typeof envName, undefined>;
  };
}

/** How many of `<key>`, `<key>File`, `<key>Env` are set. */
const given = (o: object, key: string): number => {
  const record = o as Record<string, unknown>;
  return [record[key], record[`${key}File`], record[`${key}Env`]].filter((x) => x !== undefined).length;
};
const exactlyOne = (key: string) => `expected exactly one of ${key}, ${key}File, ${key}Env`;

/** A JSON webhook (generic), a Slack-, Discord- or Mattermost-compatible incoming webhook. */
const webhookSchema = v.pipe(
  v.strictObject({
    url: v.optional(httpUrl),
    ...secretKeys("url"),
    headers: v.optional(v.record(v.string(), v.string())),
  }),
  v.check((o) => given(o, "url") === 1, exactlyOne("url")),
);
const chatSchema = v.pipe(
  v.strictObject({ url: v.optional(httpUrl), ...secretKeys("url") }),
  v.check((o) => given(o, "url") === 1, exactlyOne("url")),
);

const ntfySchema = v.pipe(
  v.strictObject({
    /** The topic's URL, e.g. https://ntfy.sh/my-ollama-alerts (the topic name is a secret on ntfy.sh). */
    url: v.optional(httpUrl),
    ...secretKeys("url"),
    /** An access token (sent as a Bearer token). */
    ...secretKeys("token"),
  }),
  v.check((o) => given(o, "url") === 1, exactlyOne("url")),
  v.check((o) => given(o, "token") <= 1, "expected at most one of tokenFile, tokenEnv"),
);

const emailSchema = v.pipe(
  v.strictObject({
    host: nonEmpty,
    port: v.optional(count(1, 65535), 587),
    /** starttls: plain connect, then STARTTLS (required); implicit: TLS from the start (465); none: local relays only. */
    tls: v.optional(v.picklist(["starttls", "implicit", "none"]), "starttls"),
    /** A CA bundle (PEM) to trust besides the system's, e.g. a private relay's certificate. */
    caFile: v.optional(nonEmpty),
    user: v.optional(nonEmpty),
    ...secretKeys("password"),
    from: nonEmpty,
    to: v.pipe(v.array(nonEmpty), v.minLength(1, "at least one recipient")),
  }),
  v.check((o) => given(o, "password") <= 1, "expected at most one of passwordFile, passwordEnv"),
  v.check(
    (e) => (e.user === undefined) === (e.passwordFile === undefined && e.passwordEnv === undefined),
    "user and a password (passwordFile or passwordEnv) go together",
  ),
);

/** One receiver: a name, the events it wants, and exactly one kind. */
const receiverSchema = v.pipe(
  v.strictObject({
    name: v.pipe(
      v.string(),
      v.regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-' only (a metric label)"),
    ),
    events: v.optional(v.pipe(v.array(v.picklist(NOTICE_KINDS)), v.minLength(1, "at least one event")), [
      ...NOTICE_KINDS,
    ]),
    webhook: v.optional(webhookSchema),
    ntfy: v.optional(ntfySchema),
    slack: v.optional(chatSchema),
    discord: v.optional(chatSchema),
    email: v.optional(emailSchema),
  }),
  v.check(
    (r) => [r.webhook, r.ntfy, r.slack, r.discord, r.email].filter(Boolean).length === 1,
    "expected exactly one of webhook, ntfy, slack, discord, email",
  ),
);

/** `notify:` in the configuration (docs/notifications.md). */
export function notifySchema(duration: DurationSchema) {
  return v.strictObject({
    /** Base URL of the live page in links, as a person reaches it (default: http://<listen>). */
    publicUrl: v.optional(v.nullable(httpUrl), null),
    receivers: v.optional(
      v.pipe(
        v.array(receiverSchema),
        v.maxLength(32, "at most 32 receivers"),
        v.check((rs) => new Set(rs.map((r) => r.name)).size === rs.length, "receiver names must be unique"),
      ),
      [],
    ),
    /** One attempt's deadline (connect, send, answer). */
    timeout: v.optional(duration(1, 10 * MINUTE), "10s"),
    retry: v.optional(
      v.strictObject({
        attempts: v.optional(count(1, 100), 5),
        backoff: v.optional(duration(1, HOUR), "5s"),
        maxBackoff: v.optional(duration(1, DAY), "5m"),
      }),
      {},
    ),
    /** Messages waiting per receiver; beyond it the oldest is dropped (and counted). */
    queueSize: v.optional(count(1, 100_000), 100),
    /** The same message (kind, target, title) to a receiver within this window is sent once. */
    dedupWindow: v.optional(duration(0, DAY), "10m"),
    rateLimit: v.optional(
      v.strictObject({
        max: v.optional(count(1, 100_000), 30),
        window: v.optional(duration(1000, DAY), "1h"),
      }),
      {},
    ),
    /** The daily digest of the last 24 h's incidents, sent at this UTC time when there were any; false: none. */
    digest: v.optional(
      v.union([
        v.literal(false),
        v.strictObject({
          at: v.pipe(v.string(), v.regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a UTC time like "08:00"')),
        }),
      ]),
      { at: "08:00" },
    ),
  });
}

export type NotifyConfig = v.InferOutput<ReturnType<typeof notifySchema>>;
export type ReceiverConfig = NotifyConfig["receivers"][number];
export type NoticeKind = (typeof NOTICE_KINDS)[number];
