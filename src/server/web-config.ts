import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, resolve } from "node:path";
import { createSecureContext } from "node:tls";
import * as v from "valibot";
import { ConfigError, parseYamlDocument } from "../config/load.js";

/**
 * TLS and basic auth for the watchdog's HTTP endpoints, in the web-config file format of the
 * Prometheus exporters (exporter-toolkit's `--web.config.file`):
 *
 *   tls_server_config: { cert_file: server.crt, key_file: server.key }
 *   basic_auth_users: { prometheus: $2y$10$… }     # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':')
 *
 * Relative paths are relative to the web-config file. Every endpoint asks for the credentials
 * (as the exporters do): Prometheus scrapes with `basic_auth` + `tls_config`, load-balancer health
 * checks send the same header.
 */
export interface WebConfig {
  file: string;
  tls?: { cert: Buffer; key: Buffer };
  /** user → bcrypt hash; empty: no authentication. */
  users: ReadonlyMap<string, string>;
}

const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;

const schema = v.strictObject({
  tls_server_config: v.optional(
    v.strictObject({
      cert_file: v.pipe(v.string(), v.minLength(1, "must not be empty")),
      key_file: v.pipe(v.string(), v.minLength(1, "must not be empty")),
    }),
  ),
  basic_auth_users: v.optional(
    v.record(
      v.pipe(v.string(), v.regex(/^[^:\s]{1,64}$/, "a user name: 1 to 64 characters, no ':' or spaces")),
      v.pipe(v.string(), v.regex(BCRYPT, "expected a bcrypt hash ($2y$10$…, e.g. from htpasswd -nBC 10)")),
    ),
  ),
});

/** Reads and checks a web-config file; every problem is a ConfigError naming the key. */
export function loadWebConfig(file: string): WebConfig {
  const fail = (message: string): never => {
    throw new ConfigError(`${file}: ${message}`, [message]);
  };
  let document: unknown;
  try {
    document = parseYamlDocument(readFileSync(file, "utf8")) ?? {};
  } catch (error) {
    return fail((error as Error).message);
  }
  const result = v.safeParse(schema, document);
  if (!result.success) {
    const problems = result.issues.map((issue) => `${v.getDotPath(issue) ?? "(root)"}: ${issue.message}`);
    throw new ConfigError(`${file}:\n${problems.join("\n")}`, problems);
  }
  const base = dirname(resolve(file));
  const read = (key: string, path: string): Buffer => {
    try {
      return readFileSync(resolve(base, path));
    } catch (error) {
      return fail(`${key}: cannot read ${resolve(base, path)} (${(error as NodeJS.ErrnoException).code})`);
    }
  };
  const config: WebConfig = { file, users: new Map(Object.entries(result.output.basic_auth_users ?? {})) };
  const tls = result.output.tls_server_config;
  if (tls) {
    config.tls = {
      cert: read("tls_server_config.cert_file", tls.cert_file),
      key: read("tls_server_config.key_file", tls.key_file),
    };
    try {
      createSecureContext(config.tls);
    } catch (error) {
      // Not PEM, or a key that does not belong to the certificate: the listener would throw at start.
      fail(`tls_server_config: ${(error as Error).message}`);
    }
  }
  return config;
}

/** A hash that no password matches, compared against for unknown users (same cost, same time). */
const UNKNOWN_USER_HASH = "$2b$10$Ikzhw7kypoolLIqxeMPwkeY9jMgZosFnQ4YSXA6gSWnIlIKjVPFWa";

/** "busy": the bcrypt work is at its bound; the request was refused without any. */
export type AuthResult = "ok" | "denied" | "busy";

/**
 * How many requests may wait for the one bcrypt compare in flight. Every wrong password costs a full
 * compare (only good pairs are remembered), and bcryptjs runs on the event loop in ≈ 100 ms slices,
 * so unbounded compares let anyone who reaches the port, without credentials, starve the ticks and
 * the health checks. One at a time (and idle time after each) bounds it; a short queue lets a real
 * client's first check through a brief burst; beyond it the answer is an immediate 429. Remembered credentials
 * never wait. During a flood, new credentials may get 429 until it stops: Prometheus and balancers
 * retry on their next interval.
 */
const BCRYPT_QUEUE = 4;
/**
 * After each compare the slot stays taken (the answer is not held) for this many times its duration:
 * bcryptjs cannot yield more often than every 100 ms, and a TLS handshake plus request needs a few
 * loop turns, each of which may wait behind a slice. With a quarter of the time in bcrypt, a right
 * password's check stayed under 0.4 s during a flood (docs/fleet.md, "Safe to expose").
 */
const BCRYPT_IDLE_FACTOR = 3;

/**
 * Checks `Authorization: Basic …` against the bcrypt hashes. bcrypt is slow on purpose (≈ 0.1 s
 * at cost 10, with the optimizer `run` turns on for it: src/cli/run.ts), and Prometheus and load
 * balancers send the same credentials every few seconds, so good answers are remembered by a
 * SHA-256 of user, password and hash (as exporter-toolkit does).
 */
export function basicAuthenticator(
  users: ReadonlyMap<string, string>,
): (header: string | undefined) => Promise<AuthResult> {
  const verified = new Set<string>();
  const waiting: (() => void)[] = [];
  let comparing = false;
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else comparing = false;
  };
  const compare = async (password: string, hash: string): Promise<boolean | "busy"> => {
    if (comparing) {
      if (waiting.length >= BCRYPT_QUEUE) return "busy";
      // Handed the slot by release(): `comparing` stays true.
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
    comparing = true;
    const started = performance.now();
    try {
      // bcryptjs is loaded on the first check: a daemon without basic auth never carries it.
      const bcrypt = (await import("bcryptjs")).default;
      return await bcrypt.compare(password, hash);
    } finally {
      setTimeout(release, BCRYPT_IDLE_FACTOR * (performance.now() - started));
    }
  };
  return async (header) => {
    const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? "");
    if (!match) return "denied";
    const decoded = Buffer.from(match[1] as string, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return "denied";
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = users.get(user);
    const key = createHash("sha256")
      .update(`${user}\0${password}\0${hash ?? ""}`)
      .digest("hex");
    if (hash && verified.has(key)) return "ok";
    const ok = await compare(password, hash ?? UNKNOWN_USER_HASH);
    if (ok === "busy") return ok;
    if (!ok || !hash) return "denied";
    if (verified.size >= 1000) verified.clear();
    verified.add(key);
    return "ok";
  };
}

/** The request gate the HTTP server calls first: true to go on, false when it answered 401 or 429. */
export function webGate(config: WebConfig): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  if (config.users.size === 0) return async () => true;
  const authenticate = basicAuthenticator(config.users);
  return async (req, res) => {
    const result = await authenticate(req.headers.authorization);
    if (result === "ok") return true;
    if (result === "busy") {
      res.writeHead(429, { "content-type": "application/json", "retry-after": "1" });
      res.end(JSON.stringify({ error: "too many authentication attempts, retry later" }));
      return false;
    }
    res.writeHead(401, {
      "content-type": "application/json",
      "www-authenticate": 'Basic realm="ollama-watchdog", charset="UTF-8"',
    });
    res.end(JSON.stringify({ error: "authentication required" }));
    return false;
  };
}
