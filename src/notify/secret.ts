import { readFileSync } from "node:fs";
import { DeliveryError } from "./notice.js";

/**
 * Resolves a secret given as `<key>` (inline), `<key>File` or `<key>Env`. A file's trailing
 * newline is dropped. Errors name the key and the file or variable, never the value.
 */
export function readSecret(
  options: Record<string, unknown>,
  key: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const inline = options[key];
  if (typeof inline === "string") return inline;
  const file = options[`${key}File`];
  if (typeof file === "string") {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw new DeliveryError(
        `${key}File ${file}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`,
        false,
      );
    }
    const value = text.replace(/\r?\n$/, "");
    if (!value) throw new DeliveryError(`${key}File ${file} is empty`, false);
    return value;
  }
  const variable = options[`${key}Env`];
  if (typeof variable === "string") {
    const value = env[variable];
    if (!value) throw new DeliveryError(`${key}Env: the environment variable ${variable} is not set`, false);
    return value;
  }
  return undefined;
}

/** Replaces every secret (and its URL-encoded form) in a text meant for a log line or a person. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) out = out.split(form).join("[secret]");
    // a URL's path and query (a Slack webhook's token, an ntfy topic) are secret too
    try {
      const url = new URL(secret);
      const tail = url.pathname + url.search;
      if (tail.length > 1) out = out.split(tail).join("/[secret]");
    } catch {
      // not a URL
    }
  }
  return out;
}
