import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { type Config, configSchema } from "./schema.js";

export const DEFAULT_CONFIG_PATH = "/etc/ollama-watchdog/config.yaml";

export class ConfigError extends Error {
  readonly code = "ECONFIG";
  constructor(
    message: string,
    readonly problems: string[],
  ) {
    super(message);
  }
}

function describe(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join(".") || "(root)";
  if (issue.code === "unrecognized_keys") {
    const where = issue.path.length ? `${path}.` : "";
    return issue.keys.map((k) => `${where}${k}: unknown key`).join("\n");
  }
  return `${path}: ${issue.message}`;
}

/** Validates an already-parsed document. Throws ConfigError naming each key path and reason. */
export function parseConfig(document: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  const result = configSchema(env).safeParse(document ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.flatMap((issue) => describe(issue).split("\n"));
  throw new ConfigError(problems.join("\n"), problems);
}

export function parseConfigText(text: string, env: NodeJS.ProcessEnv = process.env): Config {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    const message = `invalid YAML: ${(error as Error).message}`;
    throw new ConfigError(message, [message]);
  }
  return parseConfig(document, env);
}

/**
 * Loads the config: an explicit path must exist; the default path is optional (missing → defaults).
 */
export function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  const file = path ?? DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if (path === undefined && (error as NodeJS.ErrnoException).code === "ENOENT") return parseConfig({}, env);
    const message = `${file}: ${(error as Error).message}`;
    throw new ConfigError(message, [message]);
  }
  try {
    return parseConfigText(text, env);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new ConfigError(`${file}:\n${error.message}`, error.problems);
    }
    throw error;
  }
}
