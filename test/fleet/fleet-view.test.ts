import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FleetRow,
  fetchFleet,
  formatFleet,
  peerNames,
  peersFromConfig,
  rowHealthy,
  sortFleet,
} from "../../src/fleet/fleet.js";
import { CLI_ARGV } from "../support/paths.js";

const NOW = Date.UTC(2026, 0, 1, 12);

const row = (host: string, state: FleetRow["state"], extra: Partial<FleetRow> = {}): FleetRow => ({
  host,
  url: `http://${host}:11464`,
  state,
  reason: `${state} because`,
  budget: { remaining: 3, max: 3 },
  lastIncident: null,
  ...extra,
});

describe("fleet view (pure)", () => {
  it("worst first: exhausted, frozen, down, unreachable, recovering, suspect, starting, healthy", () => {
    const sorted = sortFleet([
      row("a", "healthy"),
      row("b", "suspect"),
      row("c", "unreachable"),
      row("d", "frozen"),
      row("e", "starting", { apiUp: true }),
      row("i", "starting", { apiUp: false }),
      row("f", "exhausted"),
      row("g", "recovering"),
      row("h", "down"),
    ]);
    expect(sorted.map((r) => r.state)).toEqual([
      "exhausted",
      "frozen",
      "down",
      "unreachable",
      "recovering",
      "suspect",
      "starting",
      "starting",
      "healthy",
    ]);
    expect(sorted.filter(rowHealthy).map((r) => r.host)).toEqual(["e", "a"]);
  });

  it("one line per host: state, budget, last incident, reason", () => {
    const text = formatFleet(
      [
        row("gpu2", "exhausted", {
          budget: { remaining: 0, max: 3 },
          lastIncident: {
            id: "i1",
            target: "default",
            openedWall: NOW - 300_000,
            outcome: "exhausted",
            title: "t",
          },
        }),
        row("gpu3", "unreachable", { reason: "no answer within 3000ms", budget: undefined }),
        row("gpu1", "healthy"),
      ],
      NOW,
    );
    const lines = text.split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^HOST\s+STATE\s+BUDGET\s+LAST INCIDENT\s+REASON$/);
    expect(lines[1]).toMatch(/^gpu2\s+exhausted\s+0\/3\s+exhausted 5m ago\s+exhausted because$/);
    expect(lines[2]).toMatch(/^gpu3\s+UNREACHABLE\s+-\s+-\s+http:\/\/gpu3:11464: no answer within 3000ms$/);
    expect(lines[3]).toMatch(/^gpu1\s+healthy\s+3\/3\s+none\s+healthy because$/);
  });
});

describe("fleet view: names of peers given by URL", () => {
  it("the host name where it tells the peers apart, host:port where two share a host", () => {
    expect(peerNames(["http://gpu1:11464", "https://gpu2.internal:11464"])).toEqual([
      "gpu1",
      "gpu2.internal",
    ]);
    expect(
      peerNames([
        "http://127.0.0.1:19464",
        "http://127.0.0.1:19474",
        "http://[::1]:11464",
        "http://10.0.0.1",
      ]),
    ).toEqual(["127.0.0.1:19464", "127.0.0.1:19474", "[::1]", "10.0.0.1"]);
    // Same host and port, other scheme: only the URL as given tells them apart.
    expect(peerNames(["http://gpu1:11464", "https://gpu1:11464"])).toEqual([
      "http://gpu1:11464",
      "https://gpu1:11464",
    ]);
  });

  it("names from fleet: stay; unnamed peers get the same treatment", () => {
    const peers = peersFromConfig([
      { name: "gpu1", url: "http://127.0.0.1:19464" },
      { url: "http://127.0.0.1:19474" },
      { url: "http://gpu3:11464" },
    ]);
    expect(peers.map((p) => p.name)).toEqual(["gpu1", "127.0.0.1:19474", "gpu3"]);
  });
});

describe("fleet view against real HTTP peers", () => {
  const servers: Server[] = [];
  let healthy = "";
  let frozen = "";
  let hanging = "";
  let notWatchdog = "";
  let refused = "";
  let dir = "";

  async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  const status = (state: string) =>
    JSON.stringify({
      targets: [
        {
          name: "default",
          state,
          reason: `${state} here`,
          budget: { remaining: 2, max: 3 },
          lastIncident: null,
        },
      ],
    });

  beforeAll(async () => {
    healthy = await serve((_req, res) => res.end(status("healthy")));
    frozen = await serve((_req, res) => res.end(status("frozen")));
    hanging = await serve(() => undefined);
    notWatchdog = await serve((_req, res) => res.end("{}"));
    const closed = await serve(() => undefined);
    servers.pop()?.close();
    refused = closed;
    dir = mkdtempSync(join(tmpdir(), "owd-fleet-view-"));
  });
  afterAll(() => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("every peer gets a line; a hanging or refusing peer is unreachable within the deadline", async () => {
    const started = performance.now();
    const rows = await fetchFleet(
      [
        { name: "ok", url: healthy },
        { name: "hangs", url: hanging },
        { name: "frozen", url: frozen },
        { name: "refuses", url: refused },
        { name: "other", url: notWatchdog },
      ],
      { timeoutMs: 1500 },
    );
    expect(performance.now() - started).toBeLessThan(5000);
    expect(rows.map((r) => [r.host, r.state])).toEqual([
      ["frozen", "frozen"],
      ["hangs", "unreachable"],
      ["other", "unreachable"],
      ["refuses", "unreachable"],
      ["ok", "healthy"],
    ]);
    expect(rows.find((r) => r.host === "hangs")?.reason).toBe("no answer within 1500ms");
  });

  function cli(args: string[]): Promise<{ code: number; stdout: string }> {
    return new Promise((resolve) => {
      execFile(CLI_ARGV[0] as string, [...CLI_ARGV.slice(1), ...args], { timeout: 20_000 }, (error, stdout) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout }),
      );
    });
  }

  it("status --url A --url B: exit 0 when all are healthy, 1 when one is not", async () => {
    const config = join(dir, "empty.yaml");
    writeFileSync(config, "{}\n");
    const fine = await cli(["status", "--config", config, "--url", healthy, "--url", healthy]);
    expect(fine.code, fine.stdout).toBe(0);
    expect(fine.stdout.trim().split("\n")).toHaveLength(3);
    const bad = await cli([
      "status",
      "--config",
      config,
      "--url",
      healthy,
      "--url",
      frozen,
      "--url",
      refused,
    ]);
    expect(bad.code).toBe(1);
    // Three watchdogs on one machine: each line says which (host:port).
    expect(bad.stdout.split("\n")[1]).toMatch(
      new RegExp(`^127\\.0\\.0\\.1:${new URL(frozen).port}\\s+frozen`),
    );
    expect(bad.stdout).toMatch(new RegExp(`^127\\.0\\.0\\.1:${new URL(refused).port}\\s+UNREACHABLE`, "m"));
    expect(bad.stdout).toMatch(new RegExp(`^127\\.0\\.0\\.1:${new URL(healthy).port}\\s+healthy`, "m"));
  });

  it("the fleet: list in the config is what status shows without --url", async () => {
    const config = join(dir, "fleet.yaml");
    writeFileSync(
      config,
      `fleet:\n  - { name: gpu1, url: "${healthy}" }\n  - { name: gpu2, url: "${frozen}" }\n`,
    );
    const result = await cli(["status", "--config", config, "--json"]);
    expect(result.code).toBe(1);
    const body = JSON.parse(result.stdout) as { hosts: FleetRow[] };
    expect(body.hosts.map((h) => [h.host, h.state])).toEqual([
      ["gpu2", "frozen"],
      ["gpu1", "healthy"],
    ]);
  });

  it("single-host status exits 1 while Ollama is down and no watchdog runs", async () => {
    const config = join(dir, "single.yaml");
    writeFileSync(
      config,
      `listen: "${refused.replace("http://", "")}"\ntargets:\n  - { name: default, url: "${refused}" }\ngpu: { backend: none }\n`,
    );
    const result = await cli(["status", "--config", config]);
    expect(result.stdout).toMatch(/DOWN/);
    expect(result.stdout).toMatch(/NOT RUNNING/);
    expect(result.code).toBe(1);
  });
});
