import type { Receiver } from "./notice.js";
import type { ReceiverConfig } from "./schema.js";

/** The receiver kinds, as keys of a receiver's configuration. */
export type KindKey = "webhook" | "ntfy" | "slack" | "discord" | "email";

/** One kind of receiver: its config key and how to make a receiver from its options. */
export interface ReceiverKind<K extends KindKey> {
  key: K;
  /** Reads the secrets (throws a DeliveryError naming the file or variable when one is missing). */
  create(name: string, options: NonNullable<ReceiverConfig[K]>, env: NodeJS.ProcessEnv): ConfiguredReceiver;
}

/** A receiver and the secret values its errors must never show. */
export interface ConfiguredReceiver extends Receiver {
  readonly secrets: readonly string[];
}
