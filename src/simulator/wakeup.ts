/**
 * A broadcast wake-up: waiters park on `next()` and re-check their condition when anyone calls
 * `wakeAll()`. Waiters resume in the order they parked, so a loop of "check, else wait" is FIFO.
 */
export class Wakeup {
  private waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  next(): Promise<void> {
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.resolve();
  }

  /** Fails every parked waiter (restart, stop). */
  failAll(error: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }
}
