import { readFileSync } from "node:fs";
import { loadAll } from "js-yaml";
import * as v from "valibot";
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

type Issue = v.BaseIssue<unknown>;
type Introspected = {
  type: string;
  entries?: Record<string, Introspected>;
  wrapped?: Introspected;
  item?: Introspected;
};

function pathOf(issue: Issue): string {
  return issue.path?.map((item) => String(item.key)).join(".") || "(root)";
}

function isUnknownKey(issue: Issue): boolean {
  return issue.type === "strict_object" && issue.expected === "never";
}

/** Every unknown key in the document (valibot stops at the first one of each object). */
function unknownKeys(schema: Introspected, value: unknown, path: string[]): string[] {
  if (value === null || typeof value !== "object") return [];
  if (schema.wrapped) return unknownKeys(schema.wrapped, value, path);
  if (schema.type === "array" && schema.item && Array.isArray(value)) {
    const item = schema.item;
    return value.flatMap((element, index) => unknownKeys(item, element, [...path, String(index)]));
  }
  if (schema.type !== "strict_object" || !schema.entries || Array.isArray(value)) return [];
  const entries = schema.entries;
  return Object.entries(value).flatMap(([key, child]) => {
    const entry = entries[key];
    if (!entry) return [`${[...path, key].join(".")}: unknown key`];
    return unknownKeys(entry, child, [...path, key]);
  });
}

function describe(issue: Issue): string {
  const reason = issue.message.replace(/^Invalid \w+: /, "");
  return `${pathOf(issue)}: ${reason.charAt(0).toLowerCase()}${reason.slice(1)}`;
}

/** Validates an already-parsed document. Throws ConfigError naming each key path and reason. */
export function parseConfig(document: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  const schema = configSchema(env);
  const result = v.safeParse(schema, document ?? {});
  if (result.success) return result.output;
  const problems = result.issues.filter((issue) => !isUnknownKey(issue)).map(describe);
  problems.push(...unknownKeys(schema as unknown as Introspected, document, []));
  throw new ConfigError(problems.join("\n"), problems);
}

/**
 * The one YAML document in `text`; undefined for an empty or comments-only file (read as defaults,
 * as a missing one is). js-yaml, not the `yaml` package: a third of its memory (docs/performance.md).
 */
export function parseYamlDocument(text: string): unknown {
  const documents = loadAll(text);
  if (documents.length > 1)
    throw new Error(`expected one document, found ${documents.length} (separated by ---)`);
  return documents[0];
}

export function parseConfigText(text: string, env: NodeJS.ProcessEnv = process.env): Config {
  let document: unknown;
  try {
    document = parseYamlDocument(text);
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
