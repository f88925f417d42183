/** Time as a seam: wall-clock for records, monotonic for intervals. */
export interface Clock {
  /** Epoch milliseconds (records, reports). */
  now(): number;
  /** Monotonic milliseconds (intervals, deadlines, budget windows within one process). */
  monotonic(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
};

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(
    private wall = Date.UTC(2026, 0, 1),
    private mono = 1_000_000,
  ) {}
  now(): number {
    return this.wall;
  }
  monotonic(): number {
    return this.mono;
  }
  advance(ms: number): void {
    this.wall += ms;
    this.mono += ms;
  }
}
