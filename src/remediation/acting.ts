/**
 * Acting safely, for one target: the shell around the executor that the watchdog hands every
 * remediation command to.
 *
 * - One action at a time. A command that arrives while one runs is not executed, and says so: it
 *   comes back as `NotExecuted`, and the detector does not climb its ladder on it.
 * - Counted before it starts: an fsync'd intent in the ledger, completed with the outcome. When
 *   the intent cannot be written (disk full, read-only), the action does not run: "cannot record
 *   actions" until a write succeeds again. The loop goes on observing.
 * - A hard deadline: the executor's deadline covers every module (a D-state runner can hang a
 *   /proc read forever); past it the action is recorded as failed and the next one may start.
 * - A module may refuse before anything happens (`preflight`: the unit was stopped by its
 *   operator): not executed, not counted.
 */
import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/log.js";
import type { ActionOutcome, NotExecuted, RemediationKind } from "../core/types.js";
import type { Executor, RemediationCommand } from "./executor.js";
import type { Ledger, LedgerTicket } from "./ledger.js";

export interface ActingOptions {
  target: string;
  ledger: Ledger;
  executor: Executor;
  clock: Clock;
  log: Logger;
  dryRun: boolean;
  /** After "cannot record actions" or a refusal, how long the step waits before it is tried again. */
  retryNotExecutedMs: number;
  /** Called with every finished action (metrics). */
  onOutcome?: (outcome: ActionOutcome) => void;
  /** Called with every command not executed (metrics). */
  onNotExecuted?: (notExecuted: NotExecuted) => void;
}

export class Acting {
  private inFlight: { action: RemediationKind; startedMono: number } | undefined;
  private readonly finished: ActionOutcome[] = [];
  private readonly notExecuted: NotExecuted[] = [];
  private readonly pending = new Set<Promise<void>>();
  private cannotRecordLogged = false;

  constructor(private readonly options: ActingOptions) {}

  /** Outcomes since the last call (they go into the next observation). */
  takeFinished(): ActionOutcome[] {
    return this.finished.splice(0);
  }

  /** Commands not executed since the last call (they go into the next observation). */
  takeNotExecuted(): NotExecuted[] {
    return this.notExecuted.splice(0);
  }

  /** The work in progress (the watchdog waits for it, briefly, when it stops). */
  work(): Promise<void>[] {
    return [...this.pending];
  }

  /** Starts the command in the background; its outcome (or why it did not run) comes back later. */
  run(command: RemediationCommand): void {
    const { log } = this.options;
    if (this.inFlight) {
      const forMs = Math.round(this.options.clock.monotonic() - this.inFlight.startedMono);
      this.drop(command, "busy", `${this.inFlight.action} is still running (for ${forMs}ms)`);
      return;
    }
    this.inFlight = { action: command.kind, startedMono: this.options.clock.monotonic() };
    log.warn(
      { action: command.kind, reason: command.reason, dryRun: this.options.dryRun },
      `action ${command.kind}`,
    );
    const work = this.carryOut(command)
      .catch((error: unknown) => log.error({ err: error }, "action failed unexpectedly"))
      .finally(() => {
        this.inFlight = undefined;
        this.pending.delete(work);
      });
    this.pending.add(work);
  }

  private async carryOut(command: RemediationCommand): Promise<void> {
    const { ledger, executor, clock, log, target } = this.options;
    if (!this.options.dryRun) {
      const refusal = await executor.preflight(command);
      if (refusal) {
        this.drop(command, "refused", refusal.why, this.options.retryNotExecutedMs);
        return;
      }
    }
    let ticket: LedgerTicket;
    try {
      ticket = ledger.begin({
        wall: clock.now(),
        target,
        action: command.kind,
        reason: command.reason,
        ...(this.options.dryRun ? { dryRun: true } : {}),
      });
    } catch (error) {
      const why = `cannot record actions: ${ledger.writeError ?? (error as Error).message}`;
      this.drop(command, "cannot-record", why, this.options.retryNotExecutedMs);
      return;
    }
    if (this.cannotRecordLogged) {
      this.cannotRecordLogged = false;
      log.info({ path: ledger.path }, "the ledger is writable again: acting again");
    }
    const outcome = await executor.execute(command);
    try {
      ledger.complete(ticket, {
        wall: outcome.startedWall,
        target,
        action: outcome.action,
        result: outcome.result,
        reason: command.reason,
        durationMs: outcome.durationMs,
        ...(outcome.detail ? { detail: outcome.detail } : {}),
        ...(outcome.error ? { error: outcome.error } : {}),
      });
    } catch (error) {
      // The intent is on disk: the action is counted; only its outcome is lost.
      log.error(
        { err: error, path: ledger.path },
        "cannot record the outcome of an action (it stays counted)",
      );
    }
    this.finished.push(outcome);
    this.options.onOutcome?.(outcome);
    log[outcome.result === "failure" ? "error" : "info"](
      { outcome },
      `action ${outcome.action}: ${outcome.result}`,
    );
  }

  private drop(
    command: RemediationCommand,
    why: NotExecuted["why"],
    text: string,
    retryAfterMs?: number,
  ): void {
    const notExecuted: NotExecuted = {
      action: command.kind,
      why,
      text,
      ...(retryAfterMs ? { retryAfterMs } : {}),
    };
    this.notExecuted.push(notExecuted);
    this.options.onNotExecuted?.(notExecuted);
    const log = this.options.log;
    if (why === "cannot-record") {
      if (!this.cannotRecordLogged) log.error({ action: command.kind, path: this.options.ledger.path }, text);
      this.cannotRecordLogged = true;
    } else log.warn({ action: command.kind, why }, `${command.kind} not executed: ${text}`);
  }
}
