import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/log.js";
import type { ModelTraffic, TickRecord } from "../../src/core/types.js";
import { IncidentRecorder } from "../../src/incidents/recorder.js";
import { History } from "../../src/page/history.js";
import { pageRoutes } from "../../src/page/routes.js";
import { START_WALL, TickScript } from "../incidents/scenarios.js";
import { launchChromium, watchPageProblems } from "../support/browser.js";
import { ROOT } from "../support/paths.js";
import { LiveFeed, serveRoutes } from "./live-feed.js";

/**
 * The live page's traffic per model (Observation.traffic, from the stall guard) in a real
 * Chromium, from a scripted feed: one model streaming steadily, one whose request stopped getting
 * tokens; a second target without a stall guard shows no panel.
 */
const ARTIFACTS = join(ROOT, "test-artifacts/page");
const INTERVAL_MS = 15_000;
const FAST = "llama3.2:latest";
const STUCK = "qwen2.5:7b";

describe("live page: traffic per model", () => {
  let stateDir: string;
  let profileDir: string;
  let server: Awaited<ReturnType<typeof serveRoutes>>;
  let context: BrowserContext;
  let page: Page;
  let feed: LiveFeed;
  const problems: string[] = [];
  const guarded = new TickScript("default", INTERVAL_MS, START_WALL);
  const plain = new TickScript("workstation", INTERVAL_MS, START_WALL);

  /** A healthy tick of both targets; "default" carries what its stall guard saw. */
  function tick(traffic: (mono: number) => ModelTraffic[]): void {
    const [record] = guarded.healthy(1) as [TickRecord];
    record.observation.traffic = traffic(record.observation.mono);
    feed.feed(record, ...plain.healthy(1));
  }

  /** FAST streams 24 tokens/s throughout; STUCK got its last token at `stuckAt`. */
  const fast = (mono: number, tickNo: number): ModelTraffic => ({
    model: FAST,
    inFlight: 2,
    waiting: 0,
    chunks: tickNo * 24 * (INTERVAL_MS / 1000),
    quietSinceMono: mono - 40,
    lastChunkMono: mono - 40,
    requests: tickNo * 3,
    failed: 0,
    lastTtftMs: 412.6,
  });

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "watchdog-traffic-state-"));
    profileDir = mkdtempSync(join(tmpdir(), "watchdog-traffic-chromium-"));
    mkdirSync(ARTIFACTS, { recursive: true });
    const incidents = IncidentRecorder.open({
      stateDir,
      clock: new ManualClock(START_WALL),
      log: silentLogger(),
    });
    const history = new History();
    feed = new LiveFeed(
      incidents,
      history,
      { default: "http://127.0.0.1:11435", workstation: "http://10.0.0.7:11434" },
      INTERVAL_MS,
    );
    server = await serveRoutes(pageRoutes({ snapshot: feed.snapshot, incidents, history }));
    context = await launchChromium(profileDir);
    page = context.pages()[0] ?? (await context.newPage());
    watchPageProblems(page, () => server.url, problems);
  });

  afterAll(async () => {
    await context?.close();
    await server?.close();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(profileDir, { recursive: true, force: true });
  });

  const card = (target: string) => page.locator(`.card[data-target="${target}"]`);
  const row = (model: string) => card("default").locator(`.traffic-table tr[data-model="${model}"]`);
  /** Waits until the page shows this tick: the model's request count (the 5th column). */
  const shown = (model: string, requests: number) =>
    page.waitForFunction(
      ([m, n]) => document.querySelector(`tr[data-model="${m}"] td:nth-child(5)`)?.textContent === String(n),
      [model, requests] as const,
    );
  const cells = async (model: string) =>
    (await row(model).locator("td").allTextContents()).map((t) => t.trim());

  it("before any request: the panel says so; a target without a stall guard has none", async () => {
    tick(() => []);
    await page.goto(server.url);
    await card("default").locator(".traffic-none").waitFor();
    expect(await card("default").locator(".traffic").isVisible()).toBe(true);
    expect(await card("workstation").locator(".traffic").isHidden()).toBe(true);
  });

  it("per model: in flight, tokens/s from two ticks, requests, time to first token", async () => {
    tick((mono) => [fast(mono, 1)]);
    await shown(FAST, 3);
    expect((await cells(FAST))[3], "no rate from a single tick").toBe("—");
    tick((mono) => [fast(mono, 2)]);
    await shown(FAST, 6);
    expect(await cells(FAST)).toEqual([FAST, "2", "0", "24.0", "6", "0", "413 ms", "40 ms"]);
  });

  it("a request that gets no token: for how long, in red; errors counted", async () => {
    let stuckAt = 0;
    tick((mono) => {
      stuckAt = mono - 5000;
      return [
        fast(mono, 3),
        {
          model: STUCK,
          inFlight: 1,
          waiting: 0,
          chunks: 40,
          quietSinceMono: stuckAt,
          requests: 4,
          failed: 0,
        },
      ];
    });
    await shown(STUCK, 4);
    tick((mono) => [
      fast(mono, 4),
      {
        model: STUCK,
        inFlight: 1,
        waiting: 1,
        chunks: 40,
        quietSinceMono: stuckAt,
        requests: 5,
        failed: 1,
        lastTtftMs: 2100,
      },
    ]);
    await shown(STUCK, 5);
    expect(await cells(STUCK)).toEqual([STUCK, "1", "1", "0.0", "5", "1", "2100 ms", "20 s"]);
    expect(await row(STUCK).locator("td.bad").allTextContents()).toEqual(["1", "20 s"]);
    expect(await cells(FAST)).toEqual([FAST, "2", "0", "24.0", "12", "0", "413 ms", "40 ms"]);
    const order = await card("default")
      .locator(".traffic-table tbody tr")
      .evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.model));
    expect(order).toEqual([FAST, STUCK]);
    await card("default").screenshot({ path: join(ARTIFACTS, "07-traffic.png") });
  });

  it("fits a phone: the table scrolls in its box, the page does not", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() =>
      Array.from(document.querySelectorAll(".chart-box .uplot")).every(
        (chart) => chart.getBoundingClientRect().right <= window.innerWidth,
      ),
    );
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
  });

  it("logged no console error and made no request outside the watchdog", () => {
    expect(problems).toEqual([]);
  });
});
