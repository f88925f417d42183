import type { FetchFn } from "../core/http.js";
import { type FleetPeer, type FleetRow, fetchFleet } from "./fleet.js";

/** What the live page's fleet panel shows: the latest poll of every peer, never waited for. */
export interface FleetView {
  peers: number;
  /** Wall time of the latest finished poll; null before the first one. */
  fetchedWall: number | null;
  hosts: FleetRow[];
}

/**
 * Polls the peer watchdogs in the background (each request under `timeoutMs`, one poll at a
 * time) and keeps the latest answer: the page reads `view()` and never waits on a slow peer.
 */
export class FleetPoller {
  private latest: FleetView;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly peers: readonly FleetPeer[],
    private readonly options: { everyMs: number; timeoutMs: number; fetch?: FetchFn; now?: () => number },
  ) {
    this.latest = { peers: peers.length, fetchedWall: null, hosts: [] };
  }

  start(): void {
    if (this.peers.length === 0) return;
    void this.poll();
  }

  view(): FleetView {
    return this.latest;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async poll(): Promise<void> {
    const hosts = await fetchFleet(this.peers, {
      timeoutMs: this.options.timeoutMs,
      ...(this.options.fetch ? { fetch: this.options.fetch } : {}),
    });
    if (this.stopped) return;
    this.latest = { peers: this.peers.length, fetchedWall: (this.options.now ?? Date.now)(), hosts };
    this.timer = setTimeout(() => void this.poll(), this.options.everyMs);
    this.timer.unref();
  }
}
