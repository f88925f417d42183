import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/log.js";
import type { IncidentSummary, TickRecord, WatchdogState } from "../core/types.js";
import { isProblemState, type RunnerCpu, runnerCpuOf, toSample } from "./evidence.js";
import { advance, applyEvent, replay, summaryOf } from "./incident.js";
import { IncidentStore } from "./store.js";
import type { EvidenceSample, Incident, IncidentEvent } from "./types.js";

export interface IncidentRecorderOptions {
  stateDir: string;
  clock: Clock;
  log: Logger;
  /** Finished incidents beyond this many (oldest first) are deleted. Default 200. */
  maxIncidents?: number;
  /** Healthy ticks kept as "before" evidence. Default 5. */
  beforeSamples?: number;
}

export type IncidentListener = (incident: IncidentSummary) => void;

interface TargetTrack {
  previousState: WatchdogState | "none";
  previousRunners: ReadonlyMap<number, RunnerCpu>;
  before: EvidenceSample[];
  activeId?: string;
}

const DAY_MS = 86_400_000;

/**
 * Records each episode of trouble as an incident (first non-healthy verdict → healthy again or
 * exhausted), with its evidence, in `<stateDir>/incidents/<id>.jsonl`. The daemon calls
 * `onTick` once per target per tick. An exhausted incident is closed (outcome "exhausted") but
 * keeps following the target until it is healthy again, so one wedged GPU is one incident.
 */
export class IncidentRecorder {
  private readonly incidents = new Map<string, Incident>();
  private readonly targets = new Map<string, TargetTrack>();
  private readonly listeners = new Set<IncidentListener>();
  private readonly maxIncidents: number;
  private readonly beforeSamples: number;

  private constructor(
    private readonly store: IncidentStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    options: IncidentRecorderOptions,
  ) {
    this.maxIncidents = options.maxIncidents ?? 200;
    this.beforeSamples = options.beforeSamples ?? 5;
  }

  static open(options: IncidentRecorderOptions): IncidentRecorder {
    const store = new IncidentStore(IncidentStore.dirOf(options.stateDir), options.log);
    const recorder = new IncidentRecorder(store, options.clock, options.log, options);
    recorder.load();
    return recorder;
  }

  /** Read-only access for the CLI: loads what is on disk, records nothing. */
  static read(stateDir: string, log: Logger): Pick<IncidentRecorder, "list" | "get" | "lastIncident"> {
    const store = new IncidentStore(IncidentStore.dirOf(stateDir), log, { readOnly: true });
    return readView(replayAll(store));
  }

  private load(): void {
    for (const incident of replayAll(this.store)) this.incidents.set(incident.id, incident);
    const now = this.clock.now();
    for (const incident of this.newestFirst()) {
      if (incident.finished) continue;
      const track = this.track(incident.target);
      if (track.activeId) continue;
      // Still open when the watchdog stopped: keep following it; the next tick decides.
      track.activeId = incident.id;
      track.previousState = incident.last.state;
      this.record(incident.id, [{ type: "resumed", wall: now }]);
      this.log.info({ incident: incident.id, target: incident.target }, "following an incident still open");
    }
    this.rotate();
  }

  onTick(record: TickRecord): void {
    const track = this.track(record.target);
    const active = track.activeId ? this.incidents.get(track.activeId) : undefined;
    try {
      const changes = advance(
        {
          active,
          previousState: track.previousState,
          previousRunners: track.previousRunners,
          before: track.before,
          recentIncidents: this.countRecent(record.target, record.wall),
          newId: () => this.newId(record.target, record.wall),
        },
        record,
      );
      const opened = changes.find((c) => c.type === "opened");
      const id = opened?.type === "opened" ? opened.id : active?.id;
      if (id && changes.length) {
        this.record(id, changes);
        const incident = this.incidents.get(id);
        track.activeId = incident && !incident.finished ? id : undefined;
        if (opened) {
          track.before = [];
          this.rotate();
        }
      }
    } catch (error) {
      this.log.error({ err: error, target: record.target }, "could not record the incident");
    }
    if (!track.activeId && !isProblemState(record.verdict.state)) {
      track.before = [...track.before, toSample(record, track.previousRunners)].slice(-this.beforeSamples);
    }
    track.previousState = record.verdict.state;
    track.previousRunners = runnerCpuOf(record);
  }

  list(): IncidentSummary[] {
    return this.newestFirst().map(summaryOf);
  }

  get(id: string): Incident | undefined {
    return this.incidents.get(id);
  }

  lastIncident(target: string): IncidentSummary | undefined {
    const incident = this.newestFirst().find((i) => i.target === target);
    return incident && summaryOf(incident);
  }

  /** Called on every recorded change (opened, transition, action, verification, closed). */
  onChange(listener: IncidentListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private record(id: string, changes: ReturnType<typeof advance>): void {
    let incident = this.incidents.get(id);
    for (const change of changes) incident = applyEvent(incident, change);
    if (!incident) return;
    this.incidents.set(id, incident);
    const persisted = changes.filter((c): c is IncidentEvent => c.type !== "tick");
    if (!persisted.length) return;
    try {
      this.store.append(id, persisted);
    } catch (error) {
      // Memory stays right (the page and the report still see it); the disk misses these events.
      this.log.error({ err: error, incident: id }, "could not write incident events");
    }
    const meaningful = persisted.some((c) => c.type !== "sample");
    if (!meaningful) return;
    const summary = summaryOf(incident);
    for (const listener of this.listeners) {
      try {
        listener(summary);
      } catch (error) {
        this.log.warn({ err: error }, "incident listener failed");
      }
    }
  }

  private track(target: string): TargetTrack {
    let track = this.targets.get(target);
    if (!track) {
      track = { previousState: "none", previousRunners: new Map(), before: [] };
      this.targets.set(target, track);
    }
    return track;
  }

  private newestFirst(): Incident[] {
    return sortNewestFirst([...this.incidents.values()]);
  }

  private countRecent(target: string, wall: number): number {
    let count = 0;
    for (const incident of this.incidents.values()) {
      if (incident.target === target && incident.openedWall >= wall - DAY_MS) count += 1;
    }
    return count;
  }

  private newId(target: string, wall: number): string {
    const stamp = new Date(wall)
      .toISOString()
      .replace(/[-:]/g, "")
      .replace(/\.\d+Z$/, "Z");
    const base = `${stamp}-${target.replace(/[^A-Za-z0-9_.-]/g, "_")}`;
    let id = base;
    for (let n = 2; this.incidents.has(id); n++) id = `${base}-${n}`;
    return id;
  }

  private rotate(): void {
    const excess = this.incidents.size - this.maxIncidents;
    if (excess <= 0) return;
    const removable = this.newestFirst()
      .reverse()
      .filter((i) => ![...this.targets.values()].some((t) => t.activeId === i.id))
      .slice(0, excess);
    for (const incident of removable) {
      this.store.remove(incident.id);
      this.incidents.delete(incident.id);
    }
    if (removable.length) this.log.info({ removed: removable.length }, "rotated old incidents");
  }
}

function sortNewestFirst(incidents: Incident[]): Incident[] {
  return incidents.sort((a, b) => b.openedWall - a.openedWall || (a.id < b.id ? 1 : -1));
}

function readView(incidents: Incident[]): Pick<IncidentRecorder, "list" | "get" | "lastIncident"> {
  const sorted = sortNewestFirst(incidents);
  return {
    list: () => sorted.map(summaryOf),
    get: (id) => sorted.find((i) => i.id === id),
    lastIncident: (target) => {
      const incident = sorted.find((i) => i.target === target);
      return incident && summaryOf(incident);
    },
  };
}

/** Replays every stored incident; one that replay cannot make sense of is set aside, not fatal. */
function replayAll(store: IncidentStore): Incident[] {
  const incidents: Incident[] = [];
  for (const [id, events] of store.loadAll()) {
    try {
      const incident = replay(events);
      if (incident) incidents.push(incident);
    } catch (error) {
      store.setAside(id, `replay failed: ${(error as Error).message}`);
    }
  }
  return incidents;
}
