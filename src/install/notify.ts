import { type ExecResult, execArgv, type SpawnFn } from "../core/exec.js";

/**
 * systemd's notify protocol (sd_notify) for a Node process, which cannot send the datagram itself
 * (nodejs/node#29339): each message is handed to `systemd-notify VAR=VALUE…` — no native module.
 * The unit sets `NotifyAccess=all` so a child's message counts for the service; systemd 252's
 * systemd-notify waits for systemd's barrier by default, so the message is attributed to our
 * cgroup before the helper exits.
 *
 * Never blocks the caller: messages are queued and sent fire-and-forget under a deadline, at most
 * one systemd-notify at a time, and everything queued while one runs goes out together with the
 * next one (one process per tick, however many calls the tick made). A no-op without NOTIFY_SOCKET.
 */
export interface Notifier {
  /** READY=1 with a status line: call once the listeners are bound. */
  ready(status: string): void;
  /** WATCHDOG=1: call after every completed tick, and only then. */
  watchdog(): void;
  /** STATUS=…: sent only when it changed since the last one. */
  status(text: string): void;
  /** STOPPING=1: call when a graceful stop begins. */
  stopping(): void;
  /** Resolves once everything queued so far was handed over (or given up on). */
  flush(): Promise<void>;
  /** false when NOTIFY_SOCKET is unset (not under systemd's Type=notify): every call is a no-op. */
  readonly enabled: boolean;
}

export interface NotifierOptions {
  /** The systemd-notify program. */
  program?: string;
  /** Deadline for one systemd-notify run. */
  timeoutMs?: number;
  /** Called with each finished send (tests, debug logging). */
  onSent?: (result: ExecResult) => void;
}

/** The fields of one notify message, in the order systemd-notify receives them. */
export interface NotifyMessage {
  ready?: boolean;
  stopping?: boolean;
  watchdog?: boolean;
  status?: string;
}

/** Pure: the argv that sends one message. Status text is kept to one line. */
export function notifyArgv(message: NotifyMessage, program = "systemd-notify"): string[] {
  const argv = [program];
  if (message.ready) argv.push("READY=1");
  if (message.stopping) argv.push("STOPPING=1");
  if (message.watchdog) argv.push("WATCHDOG=1");
  if (message.status !== undefined) argv.push(`STATUS=${oneLine(message.status)}`);
  return argv;
}

/** Pure: folds a new message into one still waiting to be sent. */
export function mergeMessages(pending: NotifyMessage, next: NotifyMessage): NotifyMessage {
  const merged: NotifyMessage = { ...pending };
  if (next.ready) merged.ready = true;
  if (next.stopping) merged.stopping = true;
  if (next.watchdog) merged.watchdog = true;
  if (next.status !== undefined) merged.status = next.status;
  return merged;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ").slice(0, 400);
}

function isEmpty(message: NotifyMessage): boolean {
  return !message.ready && !message.stopping && !message.watchdog && message.status === undefined;
}

const disabledNotifier: Notifier = {
  ready() {},
  watchdog() {},
  status() {},
  stopping() {},
  flush: () => Promise.resolve(),
  enabled: false,
};

export function createNotifier(
  env: NodeJS.ProcessEnv = process.env,
  spawn?: SpawnFn,
  options: NotifierOptions = {},
): Notifier {
  if (!env.NOTIFY_SOCKET) return disabledNotifier;
  const program = options.program ?? "systemd-notify";
  const timeoutMs = options.timeoutMs ?? 5000;
  let pending: NotifyMessage = {};
  let lastStatus: string | undefined;
  let sending: Promise<void> | undefined;
  let scheduled = false;

  const sendPending = async (): Promise<void> => {
    while (!isEmpty(pending)) {
      const message = pending;
      pending = {};
      const execOptions = { timeoutMs, env, maxOutput: 4096, ...(spawn ? { spawn } : {}) };
      const result = await execArgv(notifyArgv(message, program), execOptions);
      options.onSent?.(result);
    }
  };

  const schedule = () => {
    if (scheduled || sending) return;
    scheduled = true;
    // Deferred so that calls made in the same tick (watchdog + status) become one message.
    setImmediate(() => {
      scheduled = false;
      sending = sendPending()
        .catch(() => {
          // A failed notification must never take the daemon down; systemd's watchdog will tell.
        })
        .finally(() => {
          sending = undefined;
          if (!isEmpty(pending)) schedule();
        });
    });
  };

  const enqueue = (message: NotifyMessage) => {
    pending = mergeMessages(pending, message);
    schedule();
  };

  return {
    enabled: true,
    ready(status) {
      lastStatus = status;
      enqueue({ ready: true, status });
    },
    watchdog() {
      enqueue({ watchdog: true });
    },
    status(text) {
      if (text === lastStatus) return;
      lastStatus = text;
      enqueue({ status: text });
    },
    stopping() {
      enqueue({ stopping: true });
    },
    async flush() {
      for (let rounds = 0; rounds < 10 && (scheduled || sending || !isEmpty(pending)); rounds++) {
        if (sending) await sending;
        else await new Promise((resolve) => setImmediate(resolve));
      }
    },
  };
}
