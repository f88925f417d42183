import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import type { FetchFn } from "../../src/core/http.js";
import { doctorExitCode, formatChecks, parseExecStart } from "../../src/install/doctor.js";
import { formatDrill, MIN_BUDGET_FOR_DRILL, noticed, runDrill } from "../../src/install/drill.js";
import { CAP_KILL_MASK, type ProcessEntry, parseStatus, pickRunner } from "../../src/install/procfs.js";
import { formatStatus, gatherStatus, type StatusReport } from "../../src/install/status-report.js";
import { lastTickOf, listenUrl, parsePasswdLine, parseShow } from "../../src/install/system.js";

/** The pure parts of doctor, status and drill, table-tested on captured text. */

const STATUS_OF_WATCHDOG = `Name:	node
Umask:	0027
State:	S (sleeping)
Uid:	993	993	993	993
Gid:	993	993	993	993
CapInh:	0000000000000020
CapPrm:	0000000000000020
CapEff:	0000000000000020
CapBnd:	0000000000000020
CapAmb:	0000000000000020
NoNewPrivs:	1
`;

describe("procfs parsing", () => {
  it("reads uids and capabilities from /proc/<pid>/status", () => {
    const identity = parseStatus(STATUS_OF_WATCHDOG);
    expect(identity?.uids).toEqual([993, 993, 993, 993]);
    expect(identity?.capEff).toBe(CAP_KILL_MASK);
    expect(identity?.capBnd).toBe(CAP_KILL_MASK);
    expect(parseStatus("Name: x\n")).toBeUndefined();
  });

  it("picks the runner of the model: children of the server first, then by name", () => {
    const p = (pid: number, ppid: number, cmdline: string): ProcessEntry => ({
      pid,
      ppid,
      state: "S",
      startTicks: pid * 10,
      cmdline,
    });
    const patterns = { server: "ollama serve", runner: "ollama runner|llama-server" };
    const server = p(100, 1, "/usr/bin/ollama serve");
    const one = pickRunner(
      [server, p(101, 100, "/usr/bin/ollama runner --model /b/sha256-aa --port 4000")],
      patterns,
      "llama3.2:1b",
    );
    expect(one.runner?.pid).toBe(101);
    const two = pickRunner(
      [
        server,
        p(101, 100, "/usr/bin/ollama runner --model qwen2.5:0.5b --port 4000"),
        p(102, 100, "/usr/bin/ollama runner --model llama3.2:1b --port 4001"),
        p(103, 1, "ollama runner --model llama3.2:1b (someone else's)"),
      ],
      patterns,
      "llama3.2:1b",
    );
    expect(two.runner?.pid).toBe(102);
    expect(pickRunner([server], patterns, "x").runner).toBeUndefined();
  });
});

describe("system helpers", () => {
  it("parses getent, systemctl show, /healthz and listen addresses", () => {
    expect(
      parsePasswdLine("ollama-watchdog:x:993:993:Ollama watchdog:/var/lib/ollama-watchdog:/usr/sbin/nologin"),
    ).toEqual({
      name: "ollama-watchdog",
      uid: 993,
      gid: 993,
      home: "/var/lib/ollama-watchdog",
    });
    expect(parseShow("ActiveState=active\nMainPID=156\nStatusText=a=b\n")).toEqual({
      ActiveState: "active",
      MainPID: "156",
      StatusText: "a=b",
    });
    expect(lastTickOf({ ticks: 3, lastTickAt: "2026-01-01T00:00:00.000Z" })).toBe(Date.UTC(2026, 0, 1));
    expect(lastTickOf({ lastTickWall: 5 })).toBe(5);
    expect(lastTickOf({ ticks: 0, lastTickAt: null })).toBeUndefined();
    expect(listenUrl("127.0.0.1:11464")).toBe("http://127.0.0.1:11464");
    expect(listenUrl("0.0.0.0:9")).toBe("http://127.0.0.1:9");
    expect(listenUrl("[::]:9")).toBe("http://[::1]:9");
  });
});

describe("doctor output", () => {
  it("prints ✓/✗/! with fix hints and fails only on failures", () => {
    const results = [
      { name: "active", status: "pass" as const, detail: "running" },
      { name: "nvidia-smi answers", status: "warn" as const, detail: "not found", hint: "gpu.backend: none" },
    ];
    expect(formatChecks(results)).toBe(
      "✓ active: running\n! nvidia-smi answers: not found\n    fix: gpu.backend: none\nall checks passed (1 warning)",
    );
    expect(doctorExitCode(results)).toBe(0);
    const failed = [
      ...results,
      { name: "enabled at boot", status: "fail" as const, detail: "disabled", hint: "systemctl enable" },
    ];
    expect(formatChecks(failed)).toContain("✗ enabled at boot: disabled\n    fix: systemctl enable");
    expect(doctorExitCode(failed)).toBe(1);
  });

  it("reads the installed unit's ExecStart", () => {
    expect(
      parseExecStart("[Service]\nExecStart=/usr/bin/node /opt/o/dist/cli.js run --config /etc/o.yaml\n"),
    ).toEqual({
      nodePath: "/usr/bin/node",
      cliPath: "/opt/o/dist/cli.js",
      configPath: "/etc/o.yaml",
    });
  });
});

describe("status output", () => {
  const report: StatusReport = {
    ollama: {
      url: "http://127.0.0.1:11434",
      up: true,
      version: "0.12.6",
      loaded: [{ name: "llama3.2:1b", sizeVram: 2 * 1024 ** 3 }],
      available: ["llama3.2:1b", "qwen2.5:0.5b"],
    },
    gpus: [
      {
        index: "0",
        uuid: "GPU-1",
        name: "NVIDIA H100",
        utilization: 0.42,
        memoryUsedBytes: 8 * 1024 ** 3,
        memoryTotalBytes: 80 * 1024 ** 3,
      },
    ],
    gpuSource: "watchdog",
    watchdog: {
      service: "active",
      url: "http://127.0.0.1:11464",
      running: true,
      targets: [
        {
          name: "default",
          url: "http://127.0.0.1:11434",
          state: "healthy",
          since: "2026-01-01T00:00:00.000Z",
          budget: { remaining: 2, max: 3 },
          lastIncident: {
            id: "2026-01-01T00-00-00Z-default",
            target: "default",
            openedWall: Date.UTC(2025, 11, 31, 23, 0),
            outcome: "healed",
            title: "runner frozen",
          },
        },
      ],
    },
  };

  it("says everything on one screen", () => {
    const text = formatStatus(report, Date.UTC(2026, 0, 1, 0, 1));
    expect(text).toContain("Ollama     http://127.0.0.1:11434: up, version 0.12.6");
    expect(text).toContain("loaded: llama3.2:1b (2.0 GiB VRAM); available: 2");
    expect(text).toContain("NVIDIA H100: util 42%, VRAM 8.0 GiB / 80.0 GiB");
    expect(text).toContain("default: healthy since 60s ago, budget 2/3 left");
    expect(text).toContain("last incident: 2026-01-01T00-00-00Z-default healed, 61m ago: runner frozen");
  });

  it("names each stall guard, and the drop-in that moved Ollama behind it", async () => {
    const config = parseConfig(
      {
        targets: [
          {
            name: "default",
            url: "http://127.0.0.1:11435",
            restart: { systemd: { unit: "ollama" } },
            proxy: { listen: "127.0.0.1:11434" },
          },
          {
            name: "other",
            url: "http://127.0.0.1:11500",
            restart: { command: { argv: ["/usr/local/bin/restart-other-ollama"] } },
            proxy: { listen: "127.0.0.1:11501" },
          },
          { name: "plain", url: "http://127.0.0.1:11600" },
        ],
      },
      {},
    );
    const refused: FetchFn = async () => {
      throw new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } });
    };
    const dropIn = "/etc/systemd/system/ollama.service.d/zz-ollama-watchdog-proxy.conf";
    const gathered = await gatherStatus(config, {
      exec: async () => ({ exitCode: 1, stdout: "", stderr: "" }) as never,
      fetch: refused,
      exists: (path) => path === dropIn,
    });
    expect(gathered.guards).toEqual([
      { target: "default", listen: "127.0.0.1:11434", ollama: "http://127.0.0.1:11435", dropIn },
      { target: "other", listen: "127.0.0.1:11501", ollama: "http://127.0.0.1:11500" },
    ]);
    const text = formatStatus({ ...report, guards: gathered.guards }, Date.UTC(2026, 0, 1, 0, 1));
    expect(text).toContain(
      `Guard      default: clients → 127.0.0.1:11434 → Ollama http://127.0.0.1:11435; Ollama moved behind it by install --proxy (${dropIn})`,
    );
    expect(text).toContain(
      "Guard      other: clients → 127.0.0.1:11501 → Ollama http://127.0.0.1:11500; clients must use the guard's address",
    );
    expect(formatStatus(report, 0)).not.toContain("Guard");
  });

  it("says so when the watchdog is not running", () => {
    const down: StatusReport = {
      ...report,
      watchdog: {
        service: "not-installed",
        url: "http://127.0.0.1:11464",
        running: false,
        error: "ECONNREFUSED",
        targets: [],
      },
    };
    expect(formatStatus(down, 0)).toContain(
      "Watchdog   NOT RUNNING (service: not-installed; http://127.0.0.1:11464: ECONNREFUSED) — sudo ollama-watchdog install",
    );
  });
});

describe("drill", () => {
  const config = parseConfig({}, {});
  const deps = (fetchFn: FetchFn) => ({
    fetch: fetchFn,
    procRoot: "/nonexistent",
    kill: () => {
      throw new Error("must not signal anything");
    },
    now: () => 0,
    sleep: async () => {},
    print: () => {},
  });
  const answering = (body: unknown): FetchFn =>
    (async () => new Response(JSON.stringify(body), { status: 200 })) as unknown as FetchFn;

  it("refuses when the watchdog is not running", async () => {
    const refused = (async () => {
      throw new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } });
    }) as unknown as FetchFn;
    const report = await runDrill(config, { timeoutMs: 1000 }, deps(refused));
    expect(report.outcome).toBe("refused");
    expect(report.refusedBecause).toContain("the watchdog is not running");
  });

  it(`refuses with fewer than ${MIN_BUDGET_FOR_DRILL} actions left in the budget`, async () => {
    const body = {
      targets: [{ name: "default", url: "x", state: "healthy", budget: { remaining: 1, max: 3 } }],
    };
    const report = await runDrill(config, { timeoutMs: 1000 }, deps(answering(body)));
    expect(report.refusedBecause).toContain("budget has 1 action(s) left");
    expect(formatDrill(report)).toBe(`drill refused: ${report.refusedBecause}`);
  });

  it("refuses a target that is not healthy", async () => {
    const body = {
      targets: [{ name: "default", url: "x", state: "exhausted", budget: { remaining: 3, max: 3 } }],
    };
    expect((await runDrill(config, { timeoutMs: 1000 }, deps(answering(body)))).refusedBecause).toContain(
      "the target is exhausted",
    );
  });

  it("counts as noticed: a state other than healthy/starting, or a spent action", () => {
    const t = (state: string, remaining: number) => ({
      name: "d",
      url: "x",
      state,
      budget: { remaining, max: 3 },
    });
    expect(noticed(t("healthy", 3), 3)).toBe(false);
    expect(noticed(t("suspect", 3), 3)).toBe(true);
    expect(noticed(t("healthy", 2), 3)).toBe(true);
  });
});
