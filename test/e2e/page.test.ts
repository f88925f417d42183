import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, watchPageProblems } from "../support/browser.js";
import { ROOT } from "../support/paths.js";
import { MODEL, SCALED, type Scenario, startScenario } from "../support/scenario.js";

/**
 * The live page in a real Chromium against the REAL daemon and simulator (test/support/scenario.ts,
 * timings scaled to 1/40): healthy → a runner deadlock → frozen → kill-runner → recovering →
 * healthy again, and the new incident with its recovery report. test/page/live-page.test.ts checks
 * the same page against a scripted feed; this one proves the daemon's own SSE, history and
 * incidents drive it. Screenshots of each step go to test-artifacts/page/real-*.png; the last one is
 * the README's image.
 *
 * Making `frozen` observable: a first freeze is killed on the very tick it is judged frozen, so the
 * page shows red for one 250 ms tick only — too short to screenshot or assert on without racing.
 * The design keeps it observable without touching the daemon: `remediation.cooldown` is longer
 * than the time the watchdog needs to heal a first freeze and detect a second one. The first freeze
 * is healed at once (the page's state history, recorded by a MutationObserver on the badge, must
 * still show its one frozen tick); the second, injected inside the cooldown, stays `frozen` with
 * "kill-runner waits — cooldown" until the cooldown ends, which is what a real operator would see
 * after a relapse. That second episode is the incident whose report the test opens.
 */
const ARTIFACTS = join(ROOT, "test-artifacts/page");
const README_IMAGE = join(ROOT, "docs/images/live-page.png");
const COLOURS = {
  healthy: "rgb(21, 128, 61)",
  frozen: "rgb(185, 28, 28)",
  recovering: "rgb(29, 78, 216)",
};
/**
 * Longer than healing a first freeze and detecting a second: about 5 s at the scaled timings on a
 * quiet machine, 9 s and more on a loaded 2-core CI runner (a 9 s cooldown expired there before the
 * relapse was judged frozen). The relapse then waits out the rest of it, so the test pays for the
 * margin once.
 */
const COOLDOWN_MS = 20_000;
/** Reloading the model after kill-runner takes this long, so `recovering` lasts long enough to see. */
const LOAD_MS = 400;
const TARGET = "sim";

declare global {
  interface Window {
    /** Every state the badge of TARGET showed, in order (recorded by the init script below). */
    __states?: string[];
  }
}

describe("live page against the real daemon and simulator", () => {
  let scenario: Scenario;
  let profileDir: string;
  let context: BrowserContext;
  let page: Page;
  let origin: string;
  const problems: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    mkdirSync(join(ROOT, "docs/images"), { recursive: true });
    profileDir = mkdtempSync(join(tmpdir(), "watchdog-e2e-page-chromium-"));
    const [started, launched] = await Promise.all([
      startScenario({
        simulator: { timing: { tokenIntervalMs: 10, loadMs: LOAD_MS } },
        config: { remediation: { ...SCALED.remediation, cooldown: `${COOLDOWN_MS}ms` } },
      }),
      launchChromium(profileDir),
    ]);
    scenario = started;
    context = launched;
    origin = scenario.watchdog.url;
    page = context.pages()[0] ?? (await context.newPage());
    watchPageProblems(page, () => `${origin}/`, problems);
    // The page's own state history: every value the badge's data-state takes, however briefly.
    await page.addInitScript((target: string) => {
      window.__states = [];
      new MutationObserver((mutations) => {
        for (const mutation of mutations) {
          const node = mutation.target as HTMLElement;
          if (!node.classList?.contains("state-badge")) continue;
          if (node.closest(".card")?.getAttribute("data-target") !== target) continue;
          const state = node.dataset.state;
          const states = window.__states ?? [];
          if (state && states.at(-1) !== state) states.push(state);
        }
      }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
    }, TARGET);
    // Open the page while the watchdog is still starting: it then sees every tick, and its state
    // band is drawn tick by tick rather than from 5 s history buckets (ticks are 250 ms here).
    await page.goto(`${origin}/`);
    await page.locator("#connection[data-live='true']").waitFor();
    await scenario.loadModelAndSettle();
  });

  afterAll(async () => {
    await context?.close();
    await scenario?.stop();
    rmSync(profileDir, { recursive: true, force: true });
  });

  const card = () => page.locator(`.card[data-target="${TARGET}"]`);
  const fact = (label: string) => card().locator(".facts div", { hasText: label }).locator("dd");
  const pageStates = () => page.evaluate(() => window.__states ?? []);
  async function expectState(state: keyof typeof COLOURS, timeout = 15_000): Promise<void> {
    const badge = card().locator(`.state-badge[data-state="${state}"]`);
    await badge.waitFor({ state: "visible", timeout });
    await expect.poll(async () => (await badge.textContent())?.trim()).toBe(state);
    expect(await badge.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe(COLOURS[state]);
  }
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });

  it("shows the target healthy, with the loaded model, a canary and no incident", async () => {
    await expectState("healthy");
    await expect.poll(() => fact("Models loaded").textContent()).toBe(MODEL);
    await expect
      .poll(() => fact("Last canary").textContent())
      .toMatch(new RegExp(`^\\d+ ms \\(${MODEL}\\)$`));
    expect(await fact("Budget left").textContent()).toBe("3 of 3 actions");
    expect(await card().locator(".url").textContent()).toBe(scenario.simulator.url);
    expect(await card().locator("canvas").count()).toBeGreaterThanOrEqual(4);
    expect(await page.locator("#incidents-empty").isVisible()).toBe(true);
    await shot("real-01-healthy.png");
  });

  it("a first freeze is frozen for one tick, killed at once and healed: the page saw every step", async () => {
    scenario.simulator.setFault({ name: "runner-deadlock", model: MODEL });
    await page.locator('.incident[data-outcome="healed"]').waitFor({ timeout: 15_000 });
    await expectState("healthy");
    const states = await pageStates();
    expect(states.slice(states.indexOf("frozen"))).toEqual(["frozen", "recovering", "healthy"]);
    expect(await fact("Budget left").textContent()).toBe("2 of 3 actions");
  });

  it("turns red and says why when the model freezes again within the cooldown", async () => {
    scenario.simulator.setFault({ name: "runner-deadlock", model: MODEL });
    await expectState("frozen");
    await expect
      .poll(() => card().locator(".reason").textContent(), { timeout: 10_000 })
      .toMatch(/kill-runner waits — cooldown/);
    expect(await card().locator(".reason").textContent()).toMatch(/canary on .* got no token for/);
    expect(await card().locator(".since").textContent()).toMatch(/^since \d\d:\d\d:\d\d \(\d+ s\)$/);
    await expect.poll(() => fact("Frozen for").textContent()).toMatch(/^\d+ s$/);
    await page
      .locator('.incident[data-outcome="open"]', { hasText: `${TARGET}: frozen — open` })
      .waitFor({ timeout: 5_000 });
    await shot("real-02-frozen.png");
  });

  it("shows the recovery in blue while the kill-runner is verified", async () => {
    await expectState("recovering", COOLDOWN_MS + 10_000);
    await shot("real-03-recovering.png");
    // The screenshot is of the recovery: the page had not moved on when it was taken.
    expect((await pageStates()).at(-1)).toBe("recovering");
    expect(await card().locator(".reason").textContent()).toMatch(/^kill-runner /);
    expect(await fact("Budget left").textContent()).toBe("1 of 3 actions");
  });

  it("is healthy again and lists the new incident, healed, with its report", async () => {
    await expectState("healthy");
    const incidents = page.locator(".incident");
    await expect.poll(() => page.locator('.incident[data-outcome="healed"]').count()).toBe(2);
    const newest = incidents.first();
    expect(await newest.locator(".title").textContent()).toBe(`${TARGET}: frozen — healed by kill-runner`);
    const states = await pageStates();
    expect(states.filter((s) => s === "frozen")).toHaveLength(2);
    expect(states.slice(states.lastIndexOf("frozen"))).toEqual(["frozen", "recovering", "healthy"]);
    await shot("real-04-healed.png");

    await newest.click();
    const report = page.locator("#report");
    for (const heading of ["Problem", "Timeline", "Verification"]) {
      await report.locator("h2", { hasText: heading }).waitFor();
    }
    const text = (await report.textContent()) ?? "";
    expect(text).toContain(`Incident report: ${TARGET}: frozen — healed by kill-runner`);
    expect(text).toContain("kill-runner success");
    expect(text).toMatch(/cooldown/);
    expect(text).toContain("This target had 1 other incident");
    expect(await report.locator("table tr").count()).toBeGreaterThan(3);
    await shot("real-05-report.png");
    copyFileSync(join(ARTIFACTS, "real-05-report.png"), README_IMAGE);
  });

  it("logged no console error and made no request outside the watchdog", () => {
    expect(problems).toEqual([]);
  });
});
