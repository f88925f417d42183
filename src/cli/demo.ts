import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDuration } from "../config/duration.js";
import { parseConfig } from "../config/load.js";
import { silentLogger } from "../core/log.js";
import type { TickRecord } from "../core/types.js";
import { Watchdog } from "../daemon/watchdog.js";
import { renderMarkdown } from "../incidents/report.js";
import { startSimulator, startSupervisor } from "../simulator/index.js";

const DEMO_MODEL = "llama3.2:1b";

/**
 * `demo`: the simulator and the watchdog in one process, timings scaled down, a runner deadlock
 * (the seed incident) injected after --freeze-after, the story printed as it happens.
 */
export async function demoCommand(opts: {
  freezeAfter: string;
  port: string;
  once?: boolean;
}): Promise<number> {
  const freezeAfterMs = parseDuration(opts.freezeAfter);
  if (freezeAfterMs === undefined) {
    process.stderr.write(`--freeze-after: expected a duration like "20s", got "${opts.freezeAfter}"\n`);
    return 2;
  }
  const started = performance.now();
  const stamp = () => {
    const s = (performance.now() - started) / 1000;
    return `[${String(Math.floor(s / 60)).padStart(2, "0")}:${(s % 60).toFixed(1).padStart(4, "0")}]`;
  };
  const say = (text: string) => process.stdout.write(`${stamp()} ${text}\n`);

  const workDir = mkdtempSync(join(tmpdir(), "ollama-watchdog-demo-"));
  const simulator = await startSimulator({
    stateDir: join(workDir, "simulator"),
    // Ollama's own waits (VRAM recovery 5 s, health ping 10 s …) at the demo's scale (~1/15).
    timing: {
      tokenIntervalMs: 20,
      loadMs: 300,
      vramRecoveryMs: 330,
      vramConvergeMs: 20,
      healthPingTimeoutMs: 700,
      discoveryMs: 40,
    },
  });
  say(`simulated Ollama at ${simulator.url} (runners are real child processes)`);
  // The simulator runs inside this process, which therefore plays `ollama serve`; a title unique
  // to it keeps other Ollamas (or simulators) on this host from being mistaken for it.
  const serverTitle = `ollama serve demo-${simulator.port}`;
  process.title = serverTitle;
  const supervisor = await startSupervisor(simulator);
  const config = parseConfig({
    interval: "1s",
    listen: `127.0.0.1:${opts.port}`,
    stateDir: join(workDir, "state"),
    targets: [
      {
        name: "demo",
        url: simulator.url,
        restart: { command: { argv: supervisor.restartArgv, timeout: "10s" } },
        processes: { server: `^${serverTitle}` },
      },
    ],
    detection: {
      apiTimeout: "1s",
      freezeAfter: "4s",
      startupGrace: "2s",
      loadGrace: "5s",
      canary: { every: "3s", timeout: "2s" },
    },
    remediation: { cooldown: "5s", verifyWithin: "10s" },
    gpu: { backend: "nvidia", nvidiaSmi: simulator.nvidiaSmiPath, timeout: "2s" },
  });
  const watchdog = await Watchdog.start({ config, log: silentLogger() });
  say(`watchdog at ${watchdog.url} — live page: ${watchdog.url}/   metrics: ${watchdog.url}/metrics`);

  const response = await fetch(`${simulator.url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({
      model: DEMO_MODEL,
      prompt: "Why is the sky blue?",
      stream: false,
      keep_alive: "30m",
    }),
  });
  await response.text();
  say(
    `a user asked ${DEMO_MODEL} a question: model loaded, runner pid ${simulator.runners()[0]?.pid ?? "?"}`,
  );
  say(`freeze will be injected in ${opts.freezeAfter} (the runner deadlocks: API answers, generations hang)`);

  let lastState = "";
  let injectedAt: number | undefined;
  let story: (value: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    story = resolve;
  });
  watchdog.events.on("tick", (records: TickRecord[]) => {
    for (const record of records) {
      const { verdict, observation } = record;
      for (const result of observation.actionResults) {
        say(
          `action ${result.action}: ${result.result} in ${Math.round(result.durationMs)} ms${result.detail ? ` (${result.detail})` : ""}`,
        );
      }
      for (const command of verdict.commands) {
        if (command.kind !== "canary") say(`watchdog decides: ${command.kind} — ${command.reason}`);
      }
      if (verdict.state !== lastState) {
        say(`state ${verdict.state.toUpperCase()}: ${verdict.reason}`);
        if (injectedAt !== undefined && verdict.state === "healthy" && lastState !== "starting") {
          const seconds = ((performance.now() - injectedAt) / 1000).toFixed(1);
          say(`healed ${seconds} s after the freeze; a generation succeeds again`);
          const incident = watchdog.incidents.lastIncident("demo");
          const full = incident ? watchdog.incidents.get(incident.id) : undefined;
          if (full) process.stdout.write(`\n${renderMarkdown(full)}\n`);
          story(0);
        }
        lastState = verdict.state;
      }
    }
  });
  const freezeTimer = setTimeout(() => {
    simulator.setFault({ name: "runner-deadlock", model: DEMO_MODEL });
    injectedAt = performance.now();
    say(
      `FREEZE injected: runner of ${DEMO_MODEL} deadlocked (alive, idle, no tokens; /api/tags still answers)`,
    );
  }, freezeAfterMs);

  const interrupted = new Promise<number>((resolve) => {
    process.once("SIGINT", () => resolve(0));
    process.once("SIGTERM", () => resolve(0));
  });
  const giveUp = new Promise<number>((resolve) => {
    setTimeout(() => {
      say("not healed within 2 minutes of the freeze: the demo failed");
      resolve(1);
    }, freezeAfterMs + 120_000).unref();
  });
  let code = await Promise.race([done, interrupted, giveUp]);
  if (!opts.once && code === 0) {
    say(`the demo keeps running so you can look at ${watchdog.url}/ — Ctrl-C to stop`);
    code = await interrupted;
  }
  clearTimeout(freezeTimer);
  await watchdog.stop();
  await simulator.stop();
  await supervisor.close();
  rmSync(workDir, { recursive: true, force: true });
  return code;
}
