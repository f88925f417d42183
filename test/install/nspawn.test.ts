import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import { defaultLayout } from "../../src/install/layout.js";
import { sandboxDirectives, unitInputsFor } from "../../src/install/unit.js";
import { bootMachine, CHECKOUT_IN_MACHINE, type Machine, nspawnUnavailable } from "../support/nspawn.js";
import { CLI } from "../support/paths.js";
import { waitFor } from "../support/wait.js";

/**
 * The real thing, in a real systemd (systemd-nspawn, ../shared/ENVIRONMENT.md): the simulator
 * runs as ollama.service (User=ollama, like Ollama's own install), `install` installs the built
 * CLI of this checkout, and the watchdog heals what it must — with only the rights it was given.
 * The tests run in order against one machine.
 */
const CLI_IN_MACHINE = [`/usr/bin/node`, `${CHECKOUT_IN_MACHINE}/dist/cli.js`];
const CONFIG_PATH = "/etc/owd-test/config.yaml";
const CONFIG = `# Short timings so a test heals in seconds.
interval: 1s
listen: 127.0.0.1:11464
targets:
  - name: default
    url: http://127.0.0.1:11434
    restart: { systemd: { unit: ollama.service } }
detection:
  apiTimeout: 1s
  downAfter: 2
  freezeAfter: 3s
  startupGrace: 2s
  # The verification canary after kill-runner waits loadGrace + canary.timeout, and the reload
  # behind it first waits out Ollama's 5 s for the killed runner's VRAM (waitForVRAMRecovery,
  # server/sched.go v0.33.0-rc2 l.101): 5 s left a 2-core CI machine about a second to spawn the runner.
  loadGrace: 10s
  canary: { every: 2s, timeout: 2s }
remediation:
  cooldown: 1s
  budget: { max: 10, window: 1h }
  verifyWithin: 15s
gpu: { backend: none }
`;
/** The stall guard's case: Ollama moves to 11435 (install --proxy), the guard takes 11434. */
const PROXY_CONFIG_PATH = "/etc/owd-test/proxy.yaml";
const PROXY_CONFIG = CONFIG.replace("url: http://127.0.0.1:11434", "url: http://127.0.0.1:11435").replace(
  "restart: { systemd: { unit: ollama.service } }",
  "restart: { systemd: { unit: ollama.service } }\n    proxy: { listen: 127.0.0.1:11434, holdFor: 10s }",
);
// Like Ollama (envconfig.Host), the stand-in listens where OLLAMA_HOST says; `$$` is a literal `$`
// for systemd, so the shell takes the port from the environment the drop-in sets.
const OLLAMA_UNIT = `[Unit]
Description=Ollama (the simulator standing in for it)

[Service]
User=ollama
Group=ollama
Environment=OLLAMA_HOST=127.0.0.1:11434
ExecStart=/bin/sh -c 'exec /usr/bin/node ${CHECKOUT_IN_MACHINE}/dist/cli.js simulate --port "$\${OLLAMA_HOST##*:}" --state-dir /var/lib/ollama-sim'
StateDirectory=ollama-sim
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
`;

/** What the service may do, tried by hand with exactly its sandbox (the same directives). */
const SANDBOX = sandboxDirectives(unitInputsFor(parseConfigText(CONFIG, {}), defaultLayout())).flatMap(
  ([k, v]) => ["-p", `${k}=${v}`],
);

interface TargetStatus {
  name: string;
  state: string;
  reason?: string;
  budget: { remaining: number; max: number };
  models: Array<{ name: string }>;
  lastCanary?: { model: string; outcome: string } | null;
}

describe("installed in a real systemd (nspawn)", () => {
  let machine: Machine;
  let filesBefore: string[];

  const cli = (args: string[], timeoutMs = 120_000) =>
    machine.exec([...CLI_IN_MACHINE, ...args], { timeoutMs });
  const show = async (unit: string, property: string) =>
    (await machine.run(["systemctl", "show", "-p", property, "--value", unit])).trim();
  const curl = async (args: string[]) =>
    machine.exec(["curl", "-sS", "--max-time", "5", ...args], { timeoutMs: 10_000 });
  const targetStatus = async (): Promise<TargetStatus | undefined> => {
    const result = await curl(["http://127.0.0.1:11464/api/status"]);
    if (result.exitCode !== 0) return undefined;
    return (JSON.parse(result.stdout) as { targets: TargetStatus[] }).targets[0];
  };
  const asTheService = (argv: string[]) =>
    machine.exec(
      ["systemd-run", "--wait", "--pipe", "--quiet", "--service-type=exec", ...SANDBOX, "--", ...argv],
      {
        timeoutMs: 30_000,
      },
    );
  const generate = (model: string) =>
    curl([
      "-X",
      "POST",
      "http://127.0.0.1:11434/api/generate",
      "-d",
      JSON.stringify({ model, prompt: "hi", stream: false, options: { num_predict: 1 } }),
    ]);
  /** What both services logged lately: the why of a failed expectation. */
  const journals = async () => {
    const tail = async (unit: string) =>
      (await machine.exec(["journalctl", "-u", unit, "-o", "short-precise", "--no-pager", "-n", "60"]))
        .stdout;
    return `--- ollama-watchdog.service\n${await tail("ollama-watchdog.service")}\n--- ollama.service\n${await tail("ollama.service")}`;
  };
  /** Loads a model and waits until the watchdog has seen it answer a canary. */
  const loadedModel = async () => {
    const tags = JSON.parse((await curl(["http://127.0.0.1:11434/api/tags"])).stdout) as {
      models: Array<{ name: string }>;
    };
    const model = tags.models[0]?.name as string;
    expect((await generate(model)).exitCode).toBe(0);
    await waitFor(
      async () => {
        const t = await targetStatus();
        return t?.state === "healthy" && t.lastCanary?.model === model && t.lastCanary.outcome === "ok";
      },
      { timeoutMs: 30_000, everyMs: 250, what: `the watchdog to see ${model} answer` },
    );
    return model;
  };
  const snapshotFiles = async () =>
    (await machine.run(["find", "/etc", "/var/lib", "/usr/local", "-xdev"]))
      .split("\n")
      // Backups the shadow tools keep of passwd/group/shadow when a user is added or removed.
      .filter((p) => p && !/^\/etc\/(passwd|group|shadow|gshadow)-$/.test(p))
      // Journal files and systemd's own bookkeeping change on their own.
      .filter((p) => !p.startsWith("/var/lib/systemd/") && !p.startsWith("/var/log/"))
      .sort();

  beforeAll(async () => {
    // Not skipped when it cannot run: `npm test` checks root and the packages first
    // (scripts/check-test-deps.ts); a direct run says what is missing.
    const unavailable =
      nspawnUnavailable() ?? (existsSync(CLI) ? undefined : `${CLI} is missing: npx tsup first`);
    if (unavailable) throw new Error(unavailable);
    machine = await bootMachine();
    await machine.run(["systemd-sysusers", "--inline", "u ollama - - /var/lib/ollama"]);
    await machine.writeFile("/etc/systemd/system/ollama.service", OLLAMA_UNIT);
    await machine.run(["systemctl", "daemon-reload"]);
    await machine.run(["systemctl", "enable", "--now", "ollama.service"]);
    await waitFor(async () => (await curl(["http://127.0.0.1:11434/api/version"])).exitCode === 0, {
      timeoutMs: 30_000,
      what: "the simulator as ollama.service",
    }).catch(async (error) => {
      const journal = await machine.exec([
        "journalctl",
        "-u",
        "ollama.service",
        "-o",
        "cat",
        "--no-pager",
        "-n",
        "30",
      ]);
      throw new Error(`${(error as Error).message}\n${journal.stdout}`);
    });
    await machine.writeFile(CONFIG_PATH, CONFIG);
    await machine.writeFile(PROXY_CONFIG_PATH, PROXY_CONFIG);
    filesBefore = await snapshotFiles();
  }, 120_000);

  afterAll(async () => {
    await machine?.poweroff();
  });

  it("the machine booted only basic.target, not the services the host has installed", async () => {
    // The host's haproxy/nginx/prometheus… are enabled in the machine (Debian's presets enable
    // every installed unit on an empty /etc), and those that want network-online.target would
    // hold the boot on systemd-networkd-wait-online for 2 minutes: none of them was started.
    expect(await show("basic.target", "ActiveState")).toBe("active");
    for (const unit of [
      "multi-user.target",
      "network-online.target",
      "systemd-networkd-wait-online.service",
    ]) {
      expect(await show(unit, "ActiveState"), unit).toBe("inactive");
    }
  });

  it("install writes, enables, starts and verifies the service; a second run changes nothing", async () => {
    const first = await cli(["install", "--config", CONFIG_PATH]);
    expect(first.stdout, first.stderr).toContain("installed and verified");
    expect(first.exitCode).toBe(0);
    expect(await show("ollama-watchdog.service", "ActiveState")).toBe("active");
    expect(await show("ollama-watchdog.service", "UnitFileState")).toBe("enabled");
    expect(await show("ollama-watchdog.service", "WatchdogUSec")).toBe("10s");

    const second = await cli(["install", "--config", CONFIG_PATH]);
    expect(second.stdout).toContain("nothing to change");
    expect(second.exitCode).toBe(0);
  });

  it("doctor passes", async () => {
    const doctor = await cli(["doctor"], 60_000);
    expect(doctor.stdout, doctor.stderr).toContain("all checks passed");
    expect(doctor.stdout).toContain("✓ runs as the service user with CAP_KILL only");
    expect(doctor.stdout).toContain("✓ restart right granted (ollama.service)");
    expect(doctor.exitCode).toBe(0);
  });

  it("status reports Ollama and the watchdog", async () => {
    const status = await cli(["status", "--config", CONFIG_PATH, "--json"], 30_000);
    const report = JSON.parse(status.stdout) as {
      ollama: { up: boolean; version: string };
      watchdog: { service: string; running: boolean; targets: TargetStatus[] };
    };
    expect(report.ollama.up).toBe(true);
    expect(report.watchdog).toMatchObject({ service: "active", running: true });
    expect(report.watchdog.targets[0]?.budget.max).toBe(10);
  });

  it("the service can restart ollama.service and SIGKILL Ollama's processes, and nothing broader", async () => {
    const invocation = await show("ollama.service", "InvocationID");
    const restart = await asTheService(["systemctl", "restart", "ollama.service"]);
    expect(restart.exitCode, restart.stderr).toBe(0);
    expect(await show("ollama.service", "InvocationID")).not.toBe(invocation);

    for (const argv of [
      ["systemctl", "stop", "ollama.service"],
      ["systemctl", "start", "ollama.service"],
      ["systemctl", "restart", "systemd-journald.service"],
      ["systemctl", "restart", "ollama-watchdog.service"],
    ]) {
      const denied = await asTheService(argv);
      expect(denied.exitCode, argv.join(" ")).not.toBe(0);
      expect(denied.stderr).toContain("Interactive authentication required");
    }
    expect(await show("ollama.service", "ActiveState")).toBe("active");

    // Only the state dir is writable; homes are invisible; no capability but CAP_KILL.
    expect((await asTheService(["touch", "/var/lib/ollama-watchdog/probe"])).exitCode).toBe(0);
    for (const path of ["/etc/probe", "/usr/local/probe", "/var/lib/ollama-sim/probe"]) {
      expect((await asTheService(["touch", path])).exitCode, path).not.toBe(0);
    }
    expect((await asTheService(["ls", "/root"])).exitCode).not.toBe(0);
    const caps = await asTheService(["grep", "-E", "^Cap(Eff|Bnd)", "/proc/self/status"]);
    expect(caps.stdout).toMatch(/CapEff:\s+0000000000000020/);
    expect(caps.stdout).toMatch(/CapBnd:\s+0000000000000020/);
    await machine.run(["rm", "-f", "/var/lib/ollama-watchdog/probe"]);

    // A process of user ollama (as a runner is): the service may stop and kill it.
    await machine.run([
      "systemd-run",
      "--unit=fake-runner",
      "--uid=ollama",
      "/bin/bash",
      "-c",
      'exec -a "ollama runner" sleep 600',
    ]);
    const pid = await show("fake-runner.service", "MainPID");
    expect((await asTheService(["kill", "-KILL", pid])).exitCode).toBe(0);
    await waitFor(async () => (await show("fake-runner.service", "Result")) === "signal", {
      what: "the fake runner killed",
    });
  });

  it("a frozen runner (runner-deadlock) is healed by the installed service, without a restart", async () => {
    const model = await loadedModel();
    const invocation = await show("ollama.service", "InvocationID");
    const budget = (await targetStatus())?.budget.remaining as number;
    await curl(["-X", "POST", "http://127.0.0.1:11434/_sim/fault", "-d", '{"name":"runner-deadlock"}']);
    await waitFor(async () => (await targetStatus())?.state !== "healthy", {
      timeoutMs: 30_000,
      everyMs: 250,
      what: "the freeze detected",
    });
    await waitFor(
      async () => {
        const t = await targetStatus();
        return (
          t?.state === "healthy" && t.budget.remaining < budget && (await generate(model)).exitCode === 0
        );
      },
      { timeoutMs: 60_000, everyMs: 500, what: "healed: healthy again, an action spent, a generation works" },
    );
    const restarted = (await show("ollama.service", "InvocationID")) !== invocation;
    expect(restarted, restarted ? await journals() : "").toBe(false);
  });

  it("a scheduler-level freeze gets ollama.service really restarted (its InvocationID changes)", async () => {
    await curl(["-X", "DELETE", "http://127.0.0.1:11434/_sim/fault"]);
    await loadedModel();
    const invocation = await show("ollama.service", "InvocationID");
    await curl(["-X", "POST", "http://127.0.0.1:11434/_sim/fault", "-d", '{"name":"scheduler-freeze"}']);
    await waitFor(async () => (await show("ollama.service", "InvocationID")) !== invocation, {
      timeoutMs: 90_000,
      everyMs: 500,
      what: "ollama.service restarted by the watchdog",
    });
    await waitFor(async () => (await targetStatus())?.state === "healthy", {
      timeoutMs: 60_000,
      everyMs: 500,
      what: "healthy after the restart",
    });
  });

  it("SIGSTOP of the watchdog itself gets it restarted by systemd's watchdog, budget intact", async () => {
    const before = (await targetStatus())?.budget;
    const pid = await show("ollama-watchdog.service", "MainPID");
    const restarts = Number(await show("ollama-watchdog.service", "NRestarts"));
    await machine.run(["kill", "-STOP", pid]);
    await waitFor(
      async () =>
        (await show("ollama-watchdog.service", "MainPID")) !== pid &&
        (await show("ollama-watchdog.service", "ActiveState")) === "active",
      {
        timeoutMs: 40_000,
        everyMs: 500,
        what: "systemd's watchdog to restart the service (WatchdogSec=10s)",
      },
    );
    expect(Number(await show("ollama-watchdog.service", "NRestarts"))).toBe(restarts + 1);
    const journal = await machine.run([
      "journalctl",
      "-u",
      "ollama-watchdog.service",
      "-o",
      "cat",
      "--no-pager",
    ]);
    expect(journal).toContain("Watchdog timeout");
    // The budget of a tick of the new process: until its first tick, the snapshot is "starting"
    // and shows the configured maximum, not the ledger.
    const after = await waitFor(
      async () => {
        const t = await targetStatus();
        return t && t.state !== "starting" ? t.budget : undefined;
      },
      { timeoutMs: 20_000, what: "/api/status after the first tick" },
    );
    expect(after).toEqual(before);
  });

  it("drill freezes the runner, times detection and recovery, and always resumes it", async () => {
    await loadedModel();
    const drill = await cli(["drill", "--config", CONFIG_PATH, "--timeout", "90s", "--json"], 150_000);
    const report = JSON.parse(drill.stdout) as {
      outcome: string;
      detectedAfterMs: number;
      recoveredAfterMs: number;
      runner: { pid: number };
    };
    expect(report.outcome, drill.stdout).toBe("recovered");
    expect(report.detectedAfterMs).toBeLessThan(report.recoveredAfterMs);
    const state = await machine.exec(["grep", "^State", `/proc/${report.runner.pid}/status`]);
    expect(state.stdout).not.toContain("stopped");
  });

  it("uninstall leaves nothing behind", async () => {
    const uninstall = await cli(["uninstall"]);
    expect(uninstall.stdout, uninstall.stderr).toContain("uninstalled");
    expect(uninstall.exitCode).toBe(0);
    expect(await show("ollama-watchdog.service", "LoadState")).toBe("not-found");
    expect((await machine.exec(["getent", "passwd", "ollama-watchdog"])).exitCode).not.toBe(0);
    expect((await machine.exec(["getent", "group", "ollama-watchdog"])).exitCode).not.toBe(0);
    expect(await snapshotFiles()).toEqual(filesBefore);
    expect(await show("ollama.service", "ActiveState")).toBe("active");
  });

  it("install --proxy moves Ollama to 11435 and puts the stall guard on 11434; clients stream through it", async () => {
    const install = await cli(["install", "--proxy", "--config", PROXY_CONFIG_PATH]);
    expect(install.stdout, install.stderr).toContain("installed and verified");
    expect(install.stdout).toContain("✓ Ollama answers through the stall guard");
    expect(install.exitCode).toBe(0);
    expect(await show("ollama.service", "Environment")).toContain("OLLAMA_HOST=127.0.0.1:11435");
    expect((await curl(["http://127.0.0.1:11435/api/version"])).exitCode).toBe(0);

    const model = await loadedModel();
    const streamed = await curl([
      "-N",
      "http://127.0.0.1:11434/api/generate",
      "-d",
      JSON.stringify({ model, prompt: "hi", stream: true }),
    ]);
    const lines = streamed.stdout.trim().split("\n");
    expect(lines.length, streamed.stdout).toBeGreaterThan(2);
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({ done: true });
    const metrics = (await curl(["http://127.0.0.1:11464/metrics"])).stdout;
    expect(metrics).toMatch(
      /ollama_requests_total\{[^}]*endpoint="\/api\/generate"[^}]*code="200"[^}]*\} [1-9]/,
    );
  });

  it("kill -9 of the watchdog under traffic: the stream in flight breaks, :11434 refuses until systemd restarted it", async () => {
    const model = (await targetStatus())?.lastCanary?.model as string;
    const pid = await show("ollama-watchdog.service", "MainPID");
    const restarts = Number(await show("ollama-watchdog.service", "NRestarts"));
    const ollama = await show("ollama.service", "InvocationID");
    // In the machine, so no nsenter round trip blurs the timing: one stream through the guard;
    // at its first chunk, SIGKILL of the watchdog; then a request every 50 ms until one is answered.
    const run = await machine.exec(
      ["/usr/bin/node", "-e", KILL_UNDER_TRAFFIC, pid, JSON.stringify({ model, prompt: "hi", stream: true })],
      { timeoutMs: 90_000 },
    );
    expect(run.exitCode, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as KillReport;
    expect(report.stream.chunks).toBeGreaterThanOrEqual(1);
    expect(report.stream.complete, "the stream in flight breaks with the process").toBe(false);
    // Refused while nothing listens; reset: a connection the dying process's socket had queued.
    expect(report.refused).toBeGreaterThan(0);
    expect(report.reset).toBeLessThanOrEqual(1);
    expect(report.otherErrors, "nothing but refused connections meanwhile").toEqual([]);
    // Restart=on-failure, RestartSec=5s, plus the start of node and the first tick.
    expect(report.unavailableMs).toBeGreaterThan(4000);
    expect(report.unavailableMs).toBeLessThan(20_000);
    expect(Number(await show("ollama-watchdog.service", "NRestarts"))).toBe(restarts + 1);
    expect(await show("ollama.service", "InvocationID"), "Ollama itself untouched").toBe(ollama);
    console.log(
      `kill -9 under traffic: ${report.stream.chunks} chunk(s) then the stream broke (${report.stream.error}); ` +
        `:11434 refused ${report.refused} connection(s) (${report.reset} reset) for ${Math.round(report.unavailableMs)} ms`,
    );
  });

  it("uninstall restores Ollama on :11434, directly", async () => {
    const uninstall = await cli(["uninstall"]);
    expect(uninstall.stdout, uninstall.stderr).toContain("uninstalled");
    expect(uninstall.exitCode).toBe(0);
    expect(await show("ollama.service", "Environment")).not.toContain("11435");
    await waitFor(async () => (await curl(["http://127.0.0.1:11434/api/version"])).exitCode === 0, {
      timeoutMs: 30_000,
      what: "Ollama itself on :11434 again",
    });
    expect((await curl(["http://127.0.0.1:11435/api/version"])).exitCode).not.toBe(0);
    expect(await show("ollama-watchdog.service", "LoadState")).toBe("not-found");
    expect(await snapshotFiles()).toEqual(filesBefore);
  });
});

interface KillReport {
  stream: { chunks: number; complete: boolean; error: string };
  refused: number;
  reset: number;
  otherErrors: string[];
  unavailableMs: number;
}

/** argv: the watchdog's PID, the request body. Prints a KillReport. */
const KILL_UNDER_TRAFFIC = `
const http = require("node:http");
const [pid, body] = process.argv.slice(1);
const report = { stream: { chunks: 0, complete: false, error: "" }, refused: 0, reset: 0, otherErrors: [], unavailableMs: 0 };
let killedAt;
const finish = () => { process.stdout.write(JSON.stringify(report)); process.exit(0); };
setTimeout(() => { report.otherErrors.push("gave up after 60 s"); finish(); }, 60000).unref();
function probe() {
  const req = http.get({ host: "127.0.0.1", port: 11434, path: "/api/version", agent: false, timeout: 2000 }, (res) => {
    res.resume();
    if (res.statusCode === 200) { report.unavailableMs = performance.now() - killedAt; finish(); }
    else { report.otherErrors.push("status " + res.statusCode); setTimeout(probe, 50); }
  });
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.on("error", (e) => {
    if (e.code === "ECONNREFUSED") report.refused++;
    else if (e.code === "ECONNRESET") report.reset++;
    else report.otherErrors.push(e.code || e.message);
    setTimeout(probe, 50);
  });
}
const stream = http.request({ host: "127.0.0.1", port: 11434, path: "/api/generate", method: "POST" }, (res) => {
  res.on("data", () => {
    report.stream.chunks++;
    if (killedAt === undefined) { killedAt = performance.now(); process.kill(Number(pid), "SIGKILL"); probe(); }
  });
  res.on("error", (e) => { report.stream.error = e.code || e.message; });
  res.on("close", () => { report.stream.complete = res.complete; });
});
stream.on("error", (e) => { report.stream.error = report.stream.error || e.code || e.message; });
stream.end(body);
`;
