import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/log.js";
import { IncidentRecorder } from "../../src/incidents/recorder.js";
import { History } from "../../src/page/history.js";
import { pageRoutes } from "../../src/page/routes.js";
import { frozenHealedByKillRunner, START_WALL } from "../incidents/scenarios.js";
import { waitFor } from "../support/wait.js";
import { LiveFeed, serveRoutes } from "./live-feed.js";

/** Issue #11 L3: the live page's event stream has a client cap and back-pressure. */
describe("/api/events limits", () => {
  let stateDir: string;
  let server: Awaited<ReturnType<typeof serveRoutes>>;
  let feed: LiveFeed;
  const { records } = frozenHealedByKillRunner();
  const last = records.at(-1);

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "watchdog-sse-"));
    const incidents = IncidentRecorder.open({
      stateDir,
      clock: new ManualClock(START_WALL),
      log: silentLogger(),
    });
    const history = new History();
    feed = new LiveFeed(incidents, history, { default: "http://127.0.0.1:11434" });
    for (const record of records) feed.feed(record);
    server = await serveRoutes(
      pageRoutes({ snapshot: feed.snapshot, incidents, history, maxEventClients: 4, eventStallMs: 300 }),
    );
  });
  afterAll(async () => {
    await server.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  let wall = (last?.wall ?? 0) + 15_000;
  /** A tick whose snapshot weighs ~64 KiB (a long reason), so that socket buffers fill quickly. */
  async function tick(): Promise<void> {
    if (!last) throw new Error("no records");
    wall += 15_000;
    feed.feed({ ...last, wall, verdict: { ...last.verdict, reason: "r".repeat(65_536) } });
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
  }

  function open(): Promise<{ status: number; close: () => void }> {
    return new Promise((resolve, reject) => {
      const req = request(`${server.url}/api/events`, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, close: () => req.destroy() });
      });
      req.on("error", reject);
      req.end();
    });
  }

  it("answers 503 past the cap and takes a client again once one leaves", async () => {
    const clients = await Promise.all([open(), open(), open(), open()]);
    expect(clients.map((c) => c.status)).toEqual([200, 200, 200, 200]);
    const refused = await open();
    expect(refused.status).toBe(503);
    refused.close();
    clients[0]?.close();
    await waitFor(
      async () => {
        const again = await open();
        again.close();
        return again.status === 200;
      },
      { what: "a free slot" },
    );
    for (const client of clients) client.close();
  });

  it("does not queue ticks for a client that stops reading, and drops it", async () => {
    const socket = connect(Number(new URL(server.url).port), "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write(`GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    socket.pause();
    let closedByServer = false;
    socket.on("close", () => (closedByServer = true));
    const ticks = 600;
    const started = performance.now();
    for (let i = 0; i < ticks; i++) await tick();
    // The stall is judged when the next event is due: keep ticking past eventStallMs.
    while (!closedByServer && performance.now() - started < 3000) await tick();
    const oneEvent = JSON.stringify(feed.snapshot()).length;
    let received = 0;
    socket.on("data", (chunk: Buffer) => (received += chunk.length));
    socket.resume();
    await waitFor(() => closedByServer, { timeoutMs: 10_000, what: "the server to drop the stalled client" });
    console.log(
      `stalled SSE client: ${ticks} ticks of ~${oneEvent} B; the server had queued ${(received / 1048576).toFixed(1)} MB for it`,
    );
    // Socket buffers only (kernel + one highWaterMark), not every tick it missed.
    expect(received).toBeLessThan((ticks * oneEvent) / 4);
  });
});
