import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import { silentLogger } from "../../src/core/log.js";
import type { TickRecord, WatchdogState } from "../../src/core/types.js";
import { Watchdog } from "../../src/daemon/watchdog.js";
import {
  type Simulator,
  type SimulatorOptions,
  type SimulatorTiming,
  type Supervisor,
  startSimulator,
  startSupervisor,
} from "../../src/simulator/index.js";
import { waitFor } from "./wait.js";

/**
 * Scaled-down timings for scenario tests: every ratio of the defaults is kept (canary.every =
 * freezeAfter, canary.timeout = freezeAfter / 2, interval = freezeAfter / 4, …) at 1/40 of the time.
 */
export const SCALED = {
  interval: "250ms",
  detection: {
    apiTimeout: "500ms",
    downAfter: 3,
    freezeAfter: "1500ms",
    startupGrace: "500ms",
    loadGrace: "3s",
    canary: { every: "1500ms", timeout: "750ms" },
  },
  remediation: { cooldown: "1500ms", verifyWithin: "4s", budget: { max: 3, window: "1h" } },
};

export const MODEL = "llama3.2:1b";

/** Ollama's unit (scripts/install.sh, every tag): `Restart=always`, `RestartSec=3`, at SCALED's 1/40. */
const RESTART_SEC_MS = 75;

/**
 * How the watchdog restarts the simulated Ollama:
 * - "systemd": the default install — `restart.systemd` on `ollama.service` through the systemctl
 *   stand-in, whose unit restarts a crashed server by itself (`Restart=always`), and the journal of
 *   that unit read through the journalctl stand-in;
 * - "command": `restart.command` (a POST to the supervisor), no systemd, no journal unless `journal`.
 */
export type RestartVia = "systemd" | "command";

export interface Scenario {
  simulator: Simulator;
  supervisor: Supervisor;
  restartVia: RestartVia;
  watchdog: Watchdog;
  config: Config;
  stateDir: string;
  /** Every tick record since the start. */
  records: TickRecord[];
  states(): WatchdogState[];
  actions(): TickRecord["observation"]["actionResults"];
  /** Resolves with the first tick from now on whose verdict is in `state`. */
  waitForState(state: WatchdogState, timeoutMs?: number): Promise<TickRecord>;
  /** Loads MODEL with one generation, then waits until the target is healthy. */
  loadModelAndSettle(): Promise<void>;
  restartWatchdog(): Promise<void>;
  stop(): Promise<void>;
}

export interface ScenarioOptions {
  simulator?: SimulatorOptions;
  config?: Record<string, unknown>;
  stateDir?: string;
  /** Extra keys of the one target (e.g. `proxy`). */
  target?: Record<string, unknown>;
  /** The Ollama release line the simulator plays (OLLAMA_PROFILES ids); the newest by default. */
  ollamaVersion?: string;
  /** Read the simulator's log through its journalctl stand-in, as on a default systemd install. */
  journal?: boolean;
  /** "command" by default; "systemd" is the default install (implies the journal read). */
  restartVia?: RestartVia;
  /** Ollama's own timings, each over the scaled one (a slow disk's load, a long GPU discovery). */
  ollamaTiming?: Partial<SimulatorTiming>;
}

export async function startScenario(options: ScenarioOptions = {}): Promise<Scenario> {
  const workDir = mkdtempSync(join(tmpdir(), "owd-scenario-"));
  const stateDir = options.stateDir ?? join(workDir, "state");
  const restartVia = options.restartVia ?? "command";
  const systemd = restartVia === "systemd";
  let supervisor: Supervisor | undefined;
  const simulator = await startSimulator({
    stateDir: join(workDir, "simulator"),
    // Ollama's own waits at the same 1/40 scale: VRAM recovery 5 s, convergence ~1 s, ping 10 s, discovery ~2 s.
    timing: {
      tokenIntervalMs: 10,
      loadMs: 100,
      vramRecoveryMs: 125,
      vramConvergeMs: 25,
      healthPingTimeoutMs: 250,
      discoveryMs: 50,
      ...options.ollamaTiming,
    },
    ...(options.ollamaVersion ? { ollamaVersion: options.ollamaVersion } : {}),
    ...options.simulator,
    onCrash: () => supervisor?.mainProcessExited(),
  });
  supervisor = await startSupervisor(simulator, systemd ? { restartSecMs: RESTART_SEC_MS } : {});
  const journal = systemd || options.journal === true;
  // The simulator runs inside this test process, so this process plays `ollama serve`: a title
  // unique to this simulator lets the watchdog tell its runners from those of simulators that
  // other test files run at the same time (as it tells two Ollama services apart on one host).
  const serverTitle = `ollama serve sim-${simulator.port}`;
  process.title = serverTitle;
  const config = parseConfig(
    {
      ...SCALED,
      listen: "127.0.0.1:0",
      stateDir,
      targets: [
        {
          name: "sim",
          url: simulator.url,
          // systemd: the journal unit defaults to the restart unit, as on the default install.
          restart: systemd
            ? { systemd: { unit: supervisor.unit } }
            : { command: { argv: supervisor.restartArgv, timeout: "5s" } },
          processes: { server: String.raw`^${serverTitle}\b` },
          ...(journal && !systemd ? { journalUnit: supervisor.unit } : {}),
          ...options.target,
        },
      ],
      gpu: { backend: "nvidia", nvidiaSmi: simulator.nvidiaSmiPath, timeout: "1s" },
      ...options.config,
    },
    {},
  );
  const records: TickRecord[] = [];
  const watchdogOptions = {
    config,
    log: silentLogger(),
    ...(journal ? { journalctl: simulator.journalctlPath } : {}),
    ...(systemd ? { systemctl: supervisor.systemctlPath } : {}),
  };
  let watchdog = await Watchdog.start(watchdogOptions);
  const onTick = (batch: TickRecord[]) => records.push(...batch);
  watchdog.events.on("tick", onTick);

  const scenario: Scenario = {
    simulator,
    supervisor,
    restartVia,
    get watchdog() {
      return watchdog;
    },
    config,
    stateDir,
    records,
    states: () => records.map((r) => r.verdict.state),
    actions: () => records.flatMap((r) => r.observation.actionResults),
    waitForState: (state, timeoutMs = 15_000) => {
      const from = records.length;
      return waitFor(() => records.slice(from).find((r) => r.verdict.state === state), {
        timeoutMs,
        what: `state ${state}`,
      });
    },
    async loadModelAndSettle() {
      const response = await fetch(`${simulator.url}/api/generate`, {
        method: "POST",
        body: JSON.stringify({ model: MODEL, prompt: "hello", stream: false, keep_alive: "30m" }),
      });
      await response.text();
      const from = records.length;
      await waitFor(
        () =>
          records
            .slice(from)
            .some(
              (r) =>
                r.verdict.state === "healthy" &&
                r.observation.canaryResults.some((c) => c.outcome === "ok" && c.model === MODEL),
            ),
        { timeoutMs: 15_000, what: "healthy with a successful canary" },
      );
    },
    async restartWatchdog() {
      await watchdog.stop();
      watchdog = await Watchdog.start(watchdogOptions);
      watchdog.events.on("tick", onTick);
    },
    async stop() {
      await watchdog.stop();
      await simulator.stop();
      await supervisor?.close();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
  return scenario;
}
