import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { silentLogger } from "../../src/core/log.js";
import { Watchdog } from "../../src/daemon/watchdog.js";
import { launchChromium, watchPageProblems } from "../support/browser.js";

/** A watchdog whose Ollama is a closed port (it goes `down` then, fine for a peer). */
function config(dir: string, name: string, fleet: Array<{ name: string; url: string }> = []) {
  return parseConfig(
    {
      listen: "127.0.0.1:0",
      stateDir: join(dir, name),
      interval: "1s",
      targets: [
        { name: "default", url: "http://127.0.0.1:9", restart: { command: { argv: ["/bin/true"] } } },
      ],
      remediation: { dryRun: true },
      gpu: { backend: "none" },
      fleet,
    },
    {},
  );
}

describe("live page: the fleet panel", () => {
  let dir = "";
  let peer: Watchdog;
  let watchdog: Watchdog;
  let hanging: Server;
  let browser: BrowserContext | undefined;
  let refusedUrl = "";

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "owd-page-fleet-"));
    peer = await Watchdog.start({ config: config(dir, "peer"), log: silentLogger() });
    hanging = createServer(() => undefined);
    await new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve));
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    refusedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    watchdog = await Watchdog.start({
      config: config(dir, "main", [
        { name: "gpu1", url: peer.url },
        { name: "gpu2", url: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}` },
        { name: "gpu3", url: refusedUrl },
      ]),
      log: silentLogger(),
    });
  });

  afterAll(async () => {
    await browser?.close();
    hanging.closeAllConnections();
    hanging.close();
    await watchdog?.stop();
    await peer?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("shows every peer, an unreachable one as such, and never waits for a hanging one", async () => {
    // The first poll is still waiting on the hanging peer (3 s deadline): the page's data is not.
    const started = performance.now();
    const early = (await (await fetch(`${watchdog.url}/api/fleet`)).json()) as { peers: number };
    expect(performance.now() - started).toBeLessThan(1000);
    expect(early.peers).toBe(3);

    const profile = join(dir, "profile");
    browser = await launchChromium(profile);
    const page = await browser.newPage();
    const problems = watchPageProblems(page, () => watchdog.url);
    await page.goto(`${watchdog.url}/`);
    // The page itself renders at once (the targets come over SSE, not from the peers).
    await page.locator(".card").first().waitFor({ timeout: 10_000 });
    await page.locator("#fleet-panel").waitFor({ state: "visible", timeout: 10_000 });
    const rows = page.locator("#fleet tbody tr");
    await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(3);
    const text = await rows.allInnerTexts();
    expect(text[0]).toMatch(/^gpu2\tunreachable\t—\t—\thttp:\/\/127\.0\.0\.1:\d+: no answer within 3000ms$/);
    expect(text[1]).toMatch(/^gpu3\tunreachable\t—\t—\thttp:\/\/127\.0\.0\.1:\d+: /);
    expect(text[2]).toMatch(/^gpu1\t(starting|down|suspect)\t\d+\/3\tnone\t/);
    expect(problems).toEqual([]);
  }, 60_000);

  it("without peers there is no panel", async () => {
    const page = await (browser as BrowserContext).newPage();
    await page.goto(`${peer.url}/`);
    await page.locator(".card").first().waitFor({ timeout: 10_000 });
    expect(await page.locator("#fleet-panel").isHidden()).toBe(true);
  });
});
