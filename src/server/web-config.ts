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

/**
 * Checks `Authorization: Basic …` against the bcrypt hashes. bcrypt is slow on purpose (tens of
 * ms), and Prometheus and load balancers send the same credentials every few seconds, so good
 * answers are remembered by a SHA-256 of user, password and hash (as exporter-toolkit does).
 */
export function basicAuthenticator(
  users: ReadonlyMap<string, string>,
): (header: string | undefined) => Promise<boolean> {
  const verified = new Set<string>();
  return async (header) => {
    const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? "");
    if (!match) return false;
    const decoded = Buffer.from(match[1] as string, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = users.get(user);
    const key = createHash("sha256")
      .update(`${user}\0${password}\0${hash ?? ""}`)
      .digest("hex");
    if (hash && verified.has(key)) return true;
    // bcryptjs is loaded on the first check: a daemon without basic auth never carries it.
    const bcrypt = (await import("bcryptjs")).default;
    const ok = await bcrypt.compare(password, hash ?? UNKNOWN_USER_HASH);
    if (!ok || !hash) return false;
    if (verified.size >= 1000) verified.clear();
    verified.add(key);
    return true;
  };
}

/** The request gate the HTTP server calls first: true to go on, false when it answered 401. */
export function webGate(config: WebConfig): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  if (config.users.size === 0) return async () => true;
  const authenticate = basicAuthenticator(config.users);
  return async (req, res) => {
    if (await authenticate(req.headers.authorization)) return true;
    res.writeHead(401, {
      "content-type": "application/json",
      "www-authenticate": 'Basic realm="ollama-watchdog", charset="UTF-8"',
    });
    res.end(JSON.stringify({ error: "authentication required" }));
    return false;
  };
}
