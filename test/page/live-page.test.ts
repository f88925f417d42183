import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/log.js";
import type { TickRecord } from "../../src/core/types.js";
import { IncidentRecorder } from "../../src/incidents/recorder.js";
import { History } from "../../src/page/history.js";
import { pageRoutes } from "../../src/page/routes.js";
import {
  frozenHealedByKillRunner,
  START_WALL,
  suspectResolvedByItself,
  TickScript,
} from "../incidents/scenarios.js";
import { launchChromium, watchPageProblems } from "../support/browser.js";
import { ROOT } from "../support/paths.js";
import { LiveFeed, serveRoutes } from "./live-feed.js";

/**
 * The live page in a real Chromium, fed by a real IncidentRecorder and History through the page's
 * own routes: healthy → a freeze → kill-runner → healthy again → the new incident and its report.
 * Screenshots of each step go to test-artifacts/page/. The README's image comes from the same page
 * against the real daemon (test/e2e/page.test.ts).
 */
const ARTIFACTS = join(ROOT, "test-artifacts/page");
const COLOURS = {
  healthy: "rgb(21, 128, 61)",
  frozen: "rgb(185, 28, 28)",
  recovering: "rgb(29, 78, 216)",
};

describe("live page", () => {
  let stateDir: string;
  let profileDir: string;
  let server: Awaited<ReturnType<typeof serveRoutes>>;
  let context: BrowserContext;
  let page: Page;
  let feed: LiveFeed;
  const problems: string[] = [];
  // The freeze on "default" and a second, healthy target on the same ticks.
  const main = new TickScript("default", 15_000, START_WALL);
  const other = new TickScript("workstation", 15_000, START_WALL);
  let phases: { healthy: TickRecord[]; freeze: TickRecord[]; recovering: TickRecord[]; healed: TickRecord[] };

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "watchdog-page-state-"));
    profileDir = mkdtempSync(join(tmpdir(), "watchdog-page-chromium-"));
    mkdirSync(ARTIFACTS, { recursive: true });

    main.healthy(150);
    const { records } = frozenHealedByKillRunner(main);
    other.healthy(60);
    suspectResolvedByItself(other);
    other.healthy(records.length - other.records.length);
    const firstProblem = records.findIndex((r, i) => i >= 150 && r.verdict.state !== "healthy");
    const recovering = records.findIndex((r) => r.verdict.state === "recovering");
    phases = {
      healthy: records.slice(0, firstProblem),
      freeze: records.slice(firstProblem, recovering),
      recovering: records.slice(recovering, recovering + 1),
      healed: records.slice(recovering + 1),
    };

    const incidents = IncidentRecorder.open({
      stateDir,
      clock: new ManualClock(START_WALL),
      log: silentLogger(),
    });
    const history = new History();
    feed = new LiveFeed(incidents, history, {
      default: "http://127.0.0.1:11434",
      workstation: "http://10.0.0.7:11434",
    });
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

  /** Feeds records of "default" with the matching tick of "workstation", one tick at a time. */
  function feedTicks(records: TickRecord[]): void {
    for (const record of records) {
      const twin = other.records.find((r) => r.wall === record.wall);
      feed.feed(...(twin ? [record, twin] : [record]));
    }
  }

  const card = (target: string) => page.locator(`.card[data-target="${target}"]`);
  async function expectState(target: string, state: keyof typeof COLOURS): Promise<void> {
    const badge = card(target).locator(`.state-badge[data-state="${state}"]`);
    await badge.waitFor({ state: "visible" });
    expect((await badge.textContent())?.trim()).toBe(state);
    expect(await badge.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe(COLOURS[state]);
  }
  const shot = (name: string, fullPage = true) => page.screenshot({ path: join(ARTIFACTS, name), fullPage });

  it("shows every target healthy, with charts and the earlier incident", async () => {
    feedTicks(phases.healthy);
    await page.goto(server.url);
    await expectState("default", "healthy");
    await expectState("workstation", "healthy");
    await page.locator("#connection[data-live='true']").waitFor();
    expect(await card("default").locator(".reason").textContent()).toMatch(/API answers|canary/);
    expect(await card("default").locator("dd").first().textContent()).toBe("3 of 3 actions");
    expect(await card("default").locator("canvas").count()).toBeGreaterThanOrEqual(4);
    await page.locator('.incident[data-outcome="resolved-by-itself"]').waitFor();
    await shot("01-healthy.png");
  });

  it("turns red and says why when the model freezes", async () => {
    feedTicks(phases.freeze);
    await expectState("default", "frozen");
    await expectState("workstation", "healthy");
    expect(await card("default").locator(".reason").textContent()).toContain(
      "demand without progress for 60s",
    );
    expect(await card("default").locator(".since").textContent()).toMatch(/^since \d\d:\d\d:\d\d \(0 s\)$/);
    await page.locator('.incident[data-outcome="open"]').waitFor();
    await shot("02-frozen.png");
  });

  it("shows the recovery in blue while the kill-runner is verified", async () => {
    feedTicks(phases.recovering);
    await expectState("default", "recovering");
    expect(await card("default").locator("dd").first().textContent()).toBe("2 of 3 actions");
    await shot("03-recovering.png");
  });

  it("is healthy again and lists the new incident, healed, with its report", async () => {
    feedTicks(phases.healed);
    await expectState("default", "healthy");
    const incident = page.locator('.incident[data-outcome="healed"]');
    await incident.waitFor();
    expect(await incident.locator(".title").textContent()).toBe("default: frozen — healed by kill-runner");
    await shot("04-healed.png");

    await incident.click();
    const report = page.locator("#report");
    await report.locator("h2", { hasText: "Verification" }).waitFor();
    const text = (await report.textContent()) ?? "";
    expect(text).toContain("kill-runner success");
    expect(text).toContain("first token in 2.4 s");
    expect(text).toContain("Healed after 1 min 15 s");
    expect(await report.locator("table tr").count()).toBeGreaterThan(5);
    await shot("05-report.png");
  });

  it("stays readable on a phone: no sideways scrolling", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await expectState("default", "healthy");
    // Charts follow their box's width (ResizeObserver): wait until every canvas fits the screen.
    await page.waitForFunction(() =>
      Array.from(document.querySelectorAll(".chart-box .uplot")).every(
        (chart) => chart.getBoundingClientRect().right <= window.innerWidth,
      ),
    );
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await shot("06-phone.png", false);
  });

  it("logged no console error and made no request outside the watchdog", () => {
    expect(problems).toEqual([]);
  });
});
