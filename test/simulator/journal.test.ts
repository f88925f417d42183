/**
 * The simulator's server log read the way the watchdog reads Ollama's on a systemd install: the
 * journal collector runs the journalctl stand-in (`journalctlPath`), which answers from the log.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { CollectorContext } from "../../src/collectors/collector.js";
import { createJournalCollector } from "../../src/collectors/journal.js";
import { parseConfig } from "../../src/config/load.js";
import { systemClock } from "../../src/core/clock.js";
import { execArgv } from "../../src/core/exec.js";
import { silentLogger } from "../../src/core/log.js";
import type { JournalSignals } from "../../src/core/types.js";
import { waitFor } from "../support/wait.js";
import { generateOnce, MODEL, startFast, stopAll, watchRequest } from "./support.js";

afterEach(stopAll);

function collectorContext(journalctl: string, unit = "ollama.service"): CollectorContext {
  const config = parseConfig(
    { targets: [{ name: "sim", url: "http://127.0.0.1:1", restart: { systemd: { unit } } }] },
    {},
  );
  return {
    target: config.targets[0] as CollectorContext["target"],
    config,
    clock: systemClock,
    fetch,
    procRoot: "/nonexistent-proc",
    journalctl,
    signal: new AbortController().signal,
    log: silentLogger(),
  };
}

describe("the journalctl stand-in", () => {
  it("answers the collector's `-u UNIT -o json --since=@T`, then `--after-cursor=C`, with journald's fields", async () => {
    const simulator = await startFast();
    const collector = createJournalCollector();
    const ctx = collectorContext(simulator.journalctlPath);
    const first = await collector.collect(ctx);
    expect(first.applies).toBe(true);

    expect((await generateOnce(simulator)).status).toBe(200);
    // A request the client gives up on is logged too, when its handler returns.
    simulator.setFault({ name: "runner-deadlock", model: MODEL });
    await waitFor(() => simulator.runners().length > 0);
    await watchRequest(`${simulator.url}/api/generate`, { model: MODEL, prompt: "hi" }, 300);
    const seen = await waitFor(async () => {
      const out = await collector.collect(ctx);
      const value = out.applies ? (out.value as JournalSignals) : undefined;
      return value && value.completions >= 1 ? value : undefined;
    });
    expect(seen.completions).toBeGreaterThanOrEqual(1);
    // The cursor moved on: only what is logged from now on comes back.
    const quiet = await collector.collect(ctx);
    expect(quiet.applies && (quiet.value as JournalSignals).completions).toBe(0);

    const raw = await execArgv(
      [simulator.journalctlPath, "-u", "ollama", "-o", "json", "--no-pager", "--since=@0"],
      { timeoutMs: 5000 },
    );
    const entries = raw.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, string>);
    expect(entries.length).toBeGreaterThan(3);
    for (const entry of entries) {
      expect(entry).toMatchObject({ _SYSTEMD_UNIT: "ollama.service", SYSLOG_IDENTIFIER: "ollama" });
      expect(entry.__CURSOR).toMatch(
        /^s=[0-9a-f]{32};i=[0-9a-f]+;b=[0-9a-f]{32};m=[0-9a-f]+;t=[0-9a-f]+;x=[0-9a-f]+$/,
      );
      expect(entry.__REALTIME_TIMESTAMP).toMatch(/^\d{16}$/);
    }
    expect(entries.some((entry) => /msg="starting llama-server"/.test(entry.MESSAGE as string))).toBe(true);
    // Both requests are logged: the one that finished and the one whose client gave up.
    const generations = entries.filter((entry) =>
      /^\[GIN\] .*POST\s+"\/api\/generate"/.test(entry.MESSAGE ?? ""),
    );
    expect(generations.length).toBeGreaterThanOrEqual(2);
  });

  it("prints nothing for another unit and refuses a garbled cursor like journalctl", async () => {
    const simulator = await startFast();
    const other = await execArgv([simulator.journalctlPath, "-u", "nginx", "-o", "json", "--since=@0"], {
      timeoutMs: 5000,
    });
    expect(other).toMatchObject({ exitCode: 0, stdout: "" });
    const garbled = await execArgv([simulator.journalctlPath, "-o", "json", "--after-cursor=nonsense"], {
      timeoutMs: 5000,
    });
    expect(garbled.exitCode).toBe(1);
    expect(garbled.stderr).toContain("Failed to seek to cursor");
  });
});
