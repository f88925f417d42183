import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Script } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/log.js";
import { IncidentRecorder } from "../../src/incidents/recorder.js";
import { PAGE_JS } from "../../src/page/assets/client.js";
import { History } from "../../src/page/history.js";
import { pageRoutes } from "../../src/page/routes.js";
import { frozenHealedByKillRunner, START_WALL } from "../incidents/scenarios.js";
import { waitFor } from "../support/wait.js";
import { LiveFeed, serveRoutes } from "./live-feed.js";

describe("page routes", () => {
  let stateDir: string;
  let server: Awaited<ReturnType<typeof serveRoutes>>;
  let feed: LiveFeed;
  let incidents: IncidentRecorder;
  const { records } = frozenHealedByKillRunner();

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "watchdog-routes-"));
    incidents = IncidentRecorder.open({ stateDir, clock: new ManualClock(START_WALL), log: silentLogger() });
    const history = new History();
    feed = new LiveFeed(incidents, history, { default: "http://127.0.0.1:11434" });
    server = await serveRoutes(pageRoutes({ snapshot: feed.snapshot, incidents, history }));
  });
  afterAll(async () => {
    await server.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("serves the page and every asset from itself, with a same-origin-only policy", async () => {
    const html = await fetch(`${server.url}/`);
    expect(html.headers.get("content-security-policy")).toContain("default-src 'self'");
    const text = await html.text();
    expect(text).not.toMatch(/https?:\/\//);
    for (const asset of ["/assets/page.js", "/assets/page.css", "/assets/uplot.js", "/assets/uplot.css"]) {
      const res = await fetch(`${server.url}${asset}`);
      expect(res.status, asset).toBe(200);
      expect((await res.text()).length, asset).toBeGreaterThan(500);
    }
    const uplot = await (await fetch(`${server.url}/assets/uplot.js`)).text();
    expect(uplot).toContain("uPlot");
  });

  it("ships a browser script that parses", () => {
    expect(() => new Script(PAGE_JS)).not.toThrow();
  });

  it("answers history, incidents and a report as JSON", async () => {
    for (const record of records) feed.feed(record);
    const history = (await (await fetch(`${server.url}/api/history?target=default`)).json()) as {
      points: unknown[];
    };
    expect(history.points.length).toBeGreaterThan(5);
    expect((await fetch(`${server.url}/api/history`)).status).toBe(400);

    const list = (await (await fetch(`${server.url}/api/incidents`)).json()) as {
      incidents: Array<{ id: string }>;
    };
    expect(list.incidents).toHaveLength(1);
    const id = list.incidents[0]?.id ?? "";
    const report = (await (await fetch(`${server.url}/api/incidents/${id}`)).json()) as {
      incident: { outcome: string };
      markdown: string;
      html: string;
    };
    expect(report.incident.outcome).toBe("healed");
    expect(report.markdown).toMatch(/^# Incident report/);
    expect(report.html).toContain("<h2>Verification</h2>");
    expect((await fetch(`${server.url}/api/incidents/nope`)).status).toBe(404);
    expect((await fetch(`${server.url}/api/incidents/%E0%A4%A`)).status).toBe(400);
  });

  it("streams a snapshot on connect and after each tick (SSE)", async () => {
    const chunks: string[] = [];
    const req = request(`${server.url}/api/events`);
    req.on("response", (res) => {
      expect(res.headers["content-type"]).toContain("text/event-stream");
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => chunks.push(chunk));
    });
    req.end();
    await waitFor(() => chunks.join("").includes("event: incidents"), { what: "initial events" });
    const before = chunks.join("").split("event: snapshot").length;
    const last = records.at(-1);
    if (!last) throw new Error("no records");
    feed.feed({ ...last, wall: last.wall + 15_000 });
    await waitFor(() => chunks.join("").split("event: snapshot").length > before, {
      what: "a tick's snapshot",
    });
    const event = chunks.join("").split("event: snapshot\ndata: ").at(-1)?.split("\n")[0] ?? "";
    const body = JSON.parse(event) as {
      snapshot: { ticks: number };
      points: Record<string, { state: string }>;
    };
    expect(body.points.default?.state).toBe("healthy");
    req.destroy();
  });
});
