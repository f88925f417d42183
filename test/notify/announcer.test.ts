import { EventEmitter } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { ManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/log.js";
import { digestFor, nextDigestWall } from "../../src/notify/announcer.js";
import type { Notice } from "../../src/notify/notice.js";
import { Notifications } from "../../src/notify/notifications.js";
import { openRecorder, tempStateDir } from "../incidents/helpers.js";
import {
  downHealedByRestart,
  frozenHealedByKillRunner,
  type Scenario,
  START_WALL,
  suspectResolvedByItself,
  wedgedGpuExhausted,
} from "../incidents/scenarios.js";

/** Notifications without receivers that keep what they would publish (the wording and the timing). */
class Collecting extends Notifications {
  readonly published: Notice[] = [];
  override publish(notice: Notice): void {
    this.published.push(notice);
  }
}

const state = tempStateDir();
afterEach(() => state.remove());

function follow(scenario: Scenario, options: { upTo?: number; stateDir?: string } = {}) {
  const recorder = openRecorder(options.stateDir ?? state.dir);
  const clock = new ManualClock(START_WALL);
  const notifications = new Collecting({
    config: parseConfig({ notify: { digest: false } }, {}).notify,
    listenUrl: "http://gpu-box:11464",
    clock,
    log: silentLogger(),
  }).attach(recorder, new EventEmitter());
  for (const record of scenario.records.slice(0, options.upTo)) recorder.onTick(record);
  return notifications.published;
}

describe("which events become messages (recorded incidents through the real IncidentRecorder)", () => {
  it("F1 frozen, healed by kill-runner: detected, action, healed", () => {
    const published = follow(frozenHealedByKillRunner());
    expect(published.map((n) => n.kind)).toEqual(["detected", "action", "healed"]);
    const [detected, action, healed] = published;
    expect(detected?.title).toBe("Ollama default is frozen");
    expect(detected?.text).toContain("Why: demand without progress for 60s");
    expect(action?.title).toBe("Watchdog: kill-runner done on Ollama default");
    expect(action?.text).toContain("Why: runner of llama3.2:3b made no progress for 60s.");
    expect(action?.text).toContain("What: kill-runner (SIGKILL pid 4242), took 120 ms.");
    expect(healed?.title).toBe("Ollama default is healthy again (after 1 min 15 s)");
    expect(healed?.text).toContain("Healed by kill-runner; time to recover: 1 min 15 s.");
    expect(healed?.text).toContain("answered in 2.4 s");
    for (const n of published) {
      expect(n.link).toBe(`http://gpu-box:11464/#incident=${encodeURIComponent(n.incident?.id ?? "")}`);
    }
  });

  it("F6 down, healed by restart: detected says down", () => {
    const published = follow(downHealedByRestart());
    expect(published.map((n) => n.kind)).toEqual(["detected", "action", "healed"]);
    expect(published[0]?.title).toBe("Ollama default is down");
  });

  it("F8 wedged GPU: detected, the actions, then exhausted with what a person must do", () => {
    const published = follow(wedgedGpuExhausted());
    const kinds = published.map((n) => n.kind);
    expect(kinds[0]).toBe("detected");
    expect(kinds).toContain("exhausted");
    expect(kinds.filter((k) => k === "action").length).toBeGreaterThan(0);
    const exhausted = published.find((n) => n.kind === "exhausted");
    expect(exhausted?.severity).toBe("critical");
    expect(exhausted?.text).toMatch(/^Do: /m);
  });

  it("a suspicion that clears by itself says nothing", () => {
    expect(follow(suspectResolvedByItself())).toEqual([]);
  });

  it("after a watchdog restart, what was already recorded is not announced again", () => {
    const scenario = frozenHealedByKillRunner();
    const cut = scenario.records.findIndex((r) => r.verdict.state === "recovering") + 1;
    const first = follow({ ...scenario, records: scenario.records.slice(0, cut) }, { stateDir: state.dir });
    expect(first.map((n) => n.kind)).toEqual(["detected", "action"]);
    // a new recorder on the same state dir: the open incident is resumed, not re-announced
    const second = follow({ ...scenario, records: scenario.records.slice(cut) }, { stateDir: state.dir });
    expect(second.map((n) => n.kind)).toEqual(["healed"]);
  });
});

describe("the daily digest", () => {
  it("comes at the configured UTC time, once a day, and only when there were incidents", () => {
    expect(new Date(nextDigestWall("08:00", Date.UTC(2026, 0, 12, 7, 59))).toISOString()).toBe(
      "2026-01-12T08:00:00.000Z",
    );
    expect(new Date(nextDigestWall("08:00", Date.UTC(2026, 0, 12, 8, 0))).toISOString()).toBe(
      "2026-01-13T08:00:00.000Z",
    );

    const recorder = openRecorder(state.dir);
    for (const r of frozenHealedByKillRunner().records) recorder.onTick(r);
    const clock = new ManualClock(Date.UTC(2026, 0, 12, 7, 0));
    const events = new EventEmitter();
    const notifications = new Collecting({
      config: parseConfig({ notify: { digest: { at: "08:00" } } }, {}).notify,
      listenUrl: "http://gpu-box:11464",
      clock,
      log: silentLogger(),
    }).attach(recorder, events);
    events.emit("tick", []);
    expect(notifications.published).toEqual([]); // 07:00: not yet
    clock.advance(60 * 60_000);
    events.emit("tick", []);
    events.emit("tick", []);
    expect(notifications.published.map((n) => n.kind)).toEqual(["digest"]); // 08:00, once
    const digest = notifications.published[0];
    expect(digest?.title).toBe("Ollama watchdog: 1 incident(s) in the last 24 h");
    expect(digest?.text).toMatch(
      /^- 2026-01-12T03:\d\d:\d\d\.\d{3}Z default: frozen — healed by kill-runner$/m,
    );
    expect(digest?.text).toContain("http://gpu-box:11464/#incident=");
    // the next day, nothing new: no digest
    clock.advance(24 * 60 * 60_000);
    events.emit("tick", []);
    expect(notifications.published).toHaveLength(1);
    expect(digestFor(recorder.list(), clock.now(), "http://x")).toBeUndefined();
  });
});
