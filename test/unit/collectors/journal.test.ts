import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createJournalCollector,
  type JournalPosition,
  journalctlArgv,
  parseJournalJson,
  parseJournalLines,
} from "../../../src/collectors/journal.js";
import { ManualClock } from "../../../src/core/clock.js";
import { FIXTURES, scratchDir, testContext, writeExecutable } from "./support.js";

const fixture = (name: string) => readFileSync(join(FIXTURES, "journal", name), "utf8");
const MESSAGES = fixture("ollama-messages.txt").split("\n").filter(Boolean);

describe("parseJournalLines", () => {
  it("counts inference [GIN] lines (any status) and collects evidence; the benign VRAM warning is not a wedged GPU", () => {
    const signals = parseJournalLines(MESSAGES);
    // POST /api/generate ×4 (200, 500, 503, coloured 200), /api/chat, /v1/chat/completions.
    expect(signals.completions).toBe(6);
    // ≤ 0.12.5 logs it at WARN on nearly every reload after a kill (server/sched.go v0.12.5).
    expect(signals.notable).toContainEqual(
      expect.stringContaining("gpu VRAM usage didn't recover within timeout"),
    );
    expect(signals.wedgedGpuEvidence).toEqual([
      expect.stringContaining("cuda driver library init failure: 999"),
      expect.stringContaining('msg="cudart init failure: 999"'),
      "CUDA error: an illegal memory access was encountered",
    ]);
    expect(signals.notable.filter((line) => !/VRAM/.test(line))).toEqual([
      expect.stringContaining('msg="starting runner"'),
      expect.stringContaining("llama runner started in 3.43 seconds"),
      expect.stringContaining("timed out waiting for llama runner to start"),
      expect.stringContaining("llama runner terminated"),
    ]);
  });

  it("does not count polling, listing or show requests as progress", () => {
    const polling = MESSAGES.filter((line) => /GET|api\/show/.test(line));
    expect(polling.length).toBeGreaterThan(0);
    expect(parseJournalLines(polling).completions).toBe(0);
  });

  it("keeps a bounded amount of evidence", () => {
    const flood = Array.from({ length: 500 }, (_, i) => `CUDA error ${i}: ${"x".repeat(1000)}`);
    const { wedgedGpuEvidence } = parseJournalLines(flood);
    expect(wedgedGpuEvidence).toHaveLength(20);
    expect(wedgedGpuEvidence[0]?.length).toBe(400);
  });

  it("0.30+ llama-server lifecycle wording is notable", () => {
    const lines = [
      'time=2026-05-01T10:00:00.000Z level=INFO source=server.go:400 msg="starting llama-server" cmd="/usr/lib/ollama/llama-server --model /m --port 4000"',
      'time=2026-05-01T10:00:03.000Z level=INFO source=server.go:600 msg="llama-server started in 3.01 seconds"',
      'time=2026-05-01T10:05:00.000Z level=ERROR source=sched.go:500 msg="timed out waiting for llama-server to start"',
    ];
    expect(parseJournalLines(lines).notable).toHaveLength(3);
  });

  it("nothing in, nothing out", () => {
    expect(parseJournalLines([])).toEqual({ completions: 0, wedgedGpuEvidence: [], notable: [] });
  });
});

describe("parseJournalJson", () => {
  it("reads messages (strings and byte arrays) and the last complete entry's cursor", () => {
    const { messages, cursor } = parseJournalJson(fixture("ollama-journalctl-json.txt"));
    expect(messages).toEqual(MESSAGES);
    expect(cursor).toMatch(/;i=5a24;/);
  });

  it("no output, no cursor", () => {
    expect(parseJournalJson("")).toEqual({ messages: [] });
  });
});

describe("journalctl argv", () => {
  it("starts at a time, then resumes after a cursor", () => {
    expect(journalctlArgv("journalctl", "ollama.service", { sinceEpochSeconds: 1767225600 })).toEqual([
      "journalctl",
      "-u",
      "ollama.service",
      "-o",
      "json",
      "--no-pager",
      "--since=@1767225600",
    ]);
    expect(journalctlArgv("journalctl", "ollama.service", { cursor: "s=1;i=2" }).at(-1)).toBe(
      "--after-cursor=s=1;i=2",
    );
  });
});

describe("journal collector", () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => {
    ({ dir, cleanup } = scratchDir("journal"));
  });
  afterEach(() => cleanup());

  /** A fake journalctl that logs its arguments and prints what the test put in `output`. */
  function fakeJournalctl(): { program: string; calls: () => string[]; setOutput: (text: string) => void } {
    const output = join(dir, "output");
    const calls = join(dir, "calls");
    writeFileSync(output, "");
    writeFileSync(calls, "");
    const program = writeExecutable(dir, "journalctl", `printf '%s\\n' "$*" >> '${calls}'\ncat '${output}'`);
    return {
      program,
      calls: () => readFileSync(calls, "utf8").split("\n").filter(Boolean),
      setOutput: (text) => writeFileSync(output, text),
    };
  }

  it("reads from now on the first tick, then after the last cursor", async () => {
    const journalctl = fakeJournalctl();
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const collector = createJournalCollector(new Map<string, JournalPosition>());
    const ctx = { ...testContext({ journalctl: journalctl.program }), clock };

    journalctl.setOutput(fixture("ollama-journalctl-json.txt"));
    const first = await collector.collect(ctx);
    expect(first.applies && first.value.completions).toBe(6);

    journalctl.setOutput("");
    const second = await collector.collect(ctx);
    expect(second).toEqual({ applies: true, value: { completions: 0, wedgedGpuEvidence: [], notable: [] } });

    const [firstCall, secondCall] = journalctl.calls();
    expect(firstCall).toBe("-u ollama.service -o json --no-pager --since=@1767225600");
    expect(secondCall).toMatch(/^-u ollama\.service -o json --no-pager --after-cursor=s=.*;i=5a24;/);
  });

  it("keeps the start time until the first entry arrives", async () => {
    const journalctl = fakeJournalctl();
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const collector = createJournalCollector(new Map());
    const ctx = { ...testContext({ journalctl: journalctl.program }), clock };
    await collector.collect(ctx);
    clock.advance(60_000);
    await collector.collect(ctx);
    expect(journalctl.calls().map((call) => call.split(" ").at(-1))).toEqual([
      "--since=@1767225600",
      "--since=@1767225600",
    ]);
  });

  it("a failure (stale cursor) is an error, and the next read starts from the time of the failure", async () => {
    const journalctl = fakeJournalctl();
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const positions = new Map<string, JournalPosition>([["default\0ollama.service", { cursor: "s=gone" }]]);
    const failing = writeExecutable(
      dir,
      "journalctl-failing",
      `echo "Failed to seek to cursor: Invalid argument" >&2; exit 1`,
    );
    const collector = createJournalCollector(positions);
    await expect(collector.collect({ ...testContext({ journalctl: failing }), clock })).rejects.toThrow(
      "journalctl exited with 1: Failed to seek to cursor: Invalid argument",
    );
    clock.advance(15_000);
    await collector.collect({ ...testContext({ journalctl: journalctl.program }), clock });
    expect(journalctl.calls()[0]?.split(" ").at(-1)).toBe("--since=@1767225600");
  });

  it("uses journalUnit over the restart unit", async () => {
    const journalctl = fakeJournalctl();
    const ctx = testContext({
      journalctl: journalctl.program,
      config: {
        targets: [{ name: "gpu0", url: "http://127.0.0.1:11434", journalUnit: "ollama@gpu0.service" }],
      },
    });
    await createJournalCollector().collect(ctx);
    expect(journalctl.calls()[0]).toMatch(/^-u ollama@gpu0\.service /);
  });

  it("does not apply without systemd: docker/command restarts, journalUnit null, no journalctl", async () => {
    const docker = testContext({
      config: {
        targets: [{ name: "d", url: "http://127.0.0.1:11434", restart: { docker: { container: "ollama" } } }],
      },
    });
    expect((await createJournalCollector().collect(docker)).applies).toBe(false);
    const disabled = testContext({
      config: { targets: [{ name: "n", url: "http://127.0.0.1:11434", journalUnit: null }] },
    });
    expect((await createJournalCollector().collect(disabled)).applies).toBe(false);
    const noJournalctl = testContext({ journalctl: join(dir, "no-journalctl") });
    expect(await createJournalCollector().collect(noJournalctl)).toEqual({
      applies: false,
      reason: expect.stringContaining("not found"),
    });
  });

  it("a hanging journalctl is an error at its deadline", async () => {
    const hanging = writeExecutable(dir, "journalctl", "exec sleep 600");
    const ctx = testContext({ journalctl: hanging, config: { detection: { apiTimeout: "200ms" } } });
    await expect(createJournalCollector().collect(ctx)).rejects.toThrow(
      "journalctl did not finish within 200ms",
    );
  });
});
