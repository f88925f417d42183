import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { writeToolWrapper } from "./dist-paths.js";
import { unitName } from "./journal-file.js";
import type { Simulator, SimulatorPhase } from "./types.js";

/**
 * Plays systemd's part for a simulator running inside this process: a tiny HTTP endpoint that
 * restarts it on request — even after it crashed (F7) and its own control API is gone — and two
 * ways for the watchdog to reach it: the argv of a `command` restart (no shell), and a `systemctl`
 * stand-in (./fake-systemctl.ts) for the `restart.systemd` path of the default install.
 */
export interface Supervisor {
  /** argv for the watchdog's `restart.command.argv`. */
  restartArgv: string[];
  /** An executable answering `systemctl restart UNIT` and `systemctl show -p … UNIT` for this simulator. */
  systemctlPath: string;
  /** The unit the systemctl stand-in manages ("ollama.service" by default, as Ollama's installer names it). */
  unit: string;
  /** performance.now() of every restart carried out (asked for, or systemd's own Restart=always). */
  restarts: number[];
  /** Restarts systemd carried out by itself after the server exited (Restart=always). */
  autoRestarts: number[];
  /** The simulated server exited on its own (wire to SimulatorOptions.onCrash). */
  mainProcessExited(): void;
  close(): Promise<void>;
}

export interface SupervisorOptions {
  /** The unit name (default "ollama.service"). */
  unit?: string;
  /**
   * systemd's `Restart=always` + `RestartSec=`: after the server exits on its own, start it again
   * this many ms later. Ollama's unit (scripts/install.sh, every tag) sets `Restart=always` and
   * `RestartSec=3`. Unset: the unit stays `failed` until someone restarts it.
   */
  restartSecMs?: number;
}

/** The env var through which the systemctl wrapper tells the stand-in where the supervisor is. */
export const SYSTEMCTL_URL_ENV = "FAKE_SYSTEMCTL_URL";
/** The env var naming the one unit the stand-in knows. */
export const SYSTEMCTL_UNIT_ENV = "FAKE_SYSTEMCTL_UNIT";

/** The unit properties the stand-in answers (`systemctl show -p …`), as systemd spells them. */
export interface UnitProperties {
  ActiveState: "active" | "activating" | "deactivating" | "inactive" | "failed";
  SubState: string;
  /** The result of the last run: `success`, or why it ended (`exit-code` for a Go panic's exit 2). */
  Result: "success" | "exit-code";
}

/**
 * What systemd reports for a `Type=simple` unit (Ollama's unit sets no Type) whose main process is
 * in `phase`. A restart job stops the old process (`deactivating/stop-sigterm`) and starts a new
 * one; starting a process that already exited is only the start half (`activating/start`).
 */
export function unitProperties(state: {
  phase: SimulatorPhase;
  /** A restart job started while the server was down (crashed): only its start half remains. */
  restartingFromDown: boolean;
  autoRestartPending: boolean;
  result: UnitProperties["Result"];
}): UnitProperties {
  const { result } = state;
  switch (state.phase) {
    case "running":
      return { ActiveState: "active", SubState: "running", Result: result };
    case "starting":
      return { ActiveState: "activating", SubState: "start", Result: result };
    case "restarting":
      return state.restartingFromDown
        ? { ActiveState: "activating", SubState: "start", Result: result }
        : { ActiveState: "deactivating", SubState: "stop-sigterm", Result: result };
    case "crashed":
      return state.autoRestartPending
        ? { ActiveState: "activating", SubState: "auto-restart", Result: result }
        : { ActiveState: "failed", SubState: "failed", Result: result };
    case "stopped":
      return { ActiveState: "inactive", SubState: "dead", Result: result };
  }
}

/** argv of a program that POSTs to `url` and exits 0 on a 2xx answer, 1 otherwise. */
export function postArgv(url: string): string[] {
  return [
    process.execPath,
    "-e",
    "fetch(process.argv[1],{method:'POST'}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))",
    url,
  ];
}

export async function startSupervisor(
  simulator: Pick<Simulator, "restart" | "phase" | "stateDir">,
  options: SupervisorOptions = {},
): Promise<Supervisor> {
  const unit = unitName(options.unit ?? "ollama.service");
  const restarts: number[] = [];
  const autoRestarts: number[] = [];
  let result: UnitProperties["Result"] = "success";
  let restartingFromDown = false;
  let autoRestart: NodeJS.Timeout | undefined;

  /** One restart at a time, as systemd merges restart jobs for one unit. */
  let inFlight: Promise<void> | undefined;
  const restart = (): Promise<void> => {
    clearTimeout(autoRestart);
    autoRestart = undefined;
    if (inFlight) return inFlight;
    restarts.push(performance.now());
    restartingFromDown = simulator.phase() === "crashed";
    inFlight = simulator
      .restart()
      .then(() => {
        // systemd resets Result when the unit starts again (service_start, src/core/service.c).
        result = "success";
      })
      .finally(() => {
        inFlight = undefined;
        restartingFromDown = false;
      });
    return inFlight;
  };

  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/unit") {
      const properties = unitProperties({
        phase: simulator.phase(),
        restartingFromDown,
        autoRestartPending: autoRestart !== undefined,
        result,
      });
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ unit, properties }));
      return;
    }
    if (req.method !== "POST" || req.url !== "/restart") {
      res.writeHead(req.method === "POST" || req.method === "GET" ? 404 : 405).end();
      return;
    }
    restart().then(
      () => res.writeHead(204).end(),
      (error: unknown) => res.writeHead(500).end(String(error)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const systemctlPath = join(simulator.stateDir, "bin", "systemctl");
  writeToolWrapper(systemctlPath, "fake-systemctl", {
    [SYSTEMCTL_URL_ENV]: base,
    [SYSTEMCTL_UNIT_ENV]: unit,
  });
  let closed = false;
  return {
    restartArgv: postArgv(`${base}/restart`),
    systemctlPath,
    unit,
    restarts,
    autoRestarts,
    mainProcessExited() {
      // `ollama serve` exits 2 on a Go panic: Result=exit-code.
      result = "exit-code";
      if (options.restartSecMs === undefined || closed || inFlight) return;
      clearTimeout(autoRestart);
      autoRestart = setTimeout(() => {
        autoRestart = undefined;
        if (closed || simulator.phase() !== "crashed") return;
        autoRestarts.push(performance.now());
        void restart().catch(() => undefined);
      }, options.restartSecMs);
    },
    close: () => {
      closed = true;
      clearTimeout(autoRestart);
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
