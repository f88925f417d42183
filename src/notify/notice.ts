import type { FetchFn } from "../core/http.js";
import type { NoticeKind } from "./schema.js";

/** What a receiver is asked to deliver: one message, already worded (src/notify/message.ts). */
export interface Notice {
  kind: NoticeKind | "test";
  severity: "critical" | "warning" | "info";
  /** One line: the subject of an e-mail, the title of a push notification. */
  title: string;
  /** Plain text, a few short lines: what happened, why, what to do. */
  text: string;
  /** The incident's report on the live page (absent for a test message). */
  link?: string;
  target?: string;
  incident?: { id: string; title: string; outcome: string; openedAt: string; closedAt?: string };
  /** When it happened (ISO 8601). */
  at: string;
}

export interface SendContext {
  /** Aborted at the attempt's deadline or when the watchdog stops. */
  signal: AbortSignal;
  /** The attempt's deadline, for clients that take one (SMTP). */
  timeoutMs: number;
  fetch: FetchFn;
}

/** Why an attempt failed; `retry: false` for answers a retry cannot change (HTTP 4xx, a bad secret). */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
  ) {
    super(message);
  }
}

/** A configured receiver, ready to send. */
export interface Receiver {
  readonly name: string;
  readonly kind: string;
  send(notice: Notice, ctx: SendContext): Promise<void>;
}
