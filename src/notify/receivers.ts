import { discord } from "./discord.js";
import { email } from "./email.js";
import type { ConfiguredReceiver, KindKey, ReceiverKind } from "./kind.js";
import { DeliveryError } from "./notice.js";
import { ntfy } from "./ntfy.js";
import type { ReceiverConfig } from "./schema.js";
import { slack } from "./slack.js";
import { webhook } from "./webhook.js";

/** Every receiver kind, in one list (a new kind: one module and one line here). */
export const RECEIVER_KINDS: ReadonlyArray<ReceiverKind<KindKey>> = [
  webhook,
  ntfy,
  slack,
  discord,
  email,
] as ReadonlyArray<ReceiverKind<KindKey>>;

/**
 * Makes the configured receiver. One whose secret cannot be read still exists: each of its sends
 * fails with that reason (counted and logged), so the daemon keeps watching Ollama and
 * `notify test` reports it.
 */
export function createReceiver(
  config: ReceiverConfig,
  env: NodeJS.ProcessEnv = process.env,
): ConfiguredReceiver {
  const kind = RECEIVER_KINDS.find((k) => config[k.key] !== undefined);
  if (!kind) throw new Error(`receiver ${config.name}: no kind`); // the schema rules this out
  try {
    return kind.create(config.name, config[kind.key] as never, env);
  } catch (error) {
    const reason =
      error instanceof DeliveryError ? error.message : `cannot be set up: ${(error as Error).message}`;
    return {
      name: config.name,
      kind: kind.key,
      secrets: [],
      send: () => Promise.reject(new DeliveryError(reason, false)),
    };
  }
}
