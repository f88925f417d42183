import { FAULTS, findFault } from "../simulator/faults/index.js";
import { DEFAULT_PROFILE, OLLAMA_PROFILES, resolveProfile } from "../simulator/profiles.js";
import { startSimulator } from "../simulator/simulator.js";
import type { FaultSpec, SimulatorTiming } from "../simulator/types.js";

/**
 * `ollama-watchdog simulate`: serves the fault-injecting Ollama simulator until SIGTERM/SIGINT.
 * Like Ollama it reads OLLAMA_NUM_PARALLEL, OLLAMA_MAX_QUEUE and OLLAMA_KEEP_ALIVE; simulator knobs
 * come from OLLAMA_SIM_TIMING (JSON, e.g. {"loadMs":50}) and OLLAMA_SIM_FAULT_PARAMS (JSON, the
 * --fault's parameters).
 */
export async function simulateCommand(opts: {
  port: string;
  host: string;
  fault?: string;
  listFaults?: boolean;
  stateDir?: string;
  ollamaVersion?: string;
  listProfiles?: boolean;
}): Promise<number> {
  if (opts.listProfiles) {
    for (const profile of OLLAMA_PROFILES) {
      const isDefault = profile === DEFAULT_PROFILE ? " (default)" : "";
      process.stdout.write(
        `${profile.id.padEnd(6)} ${profile.version.padEnd(8)} covers ${profile.covers}, checked against ${profile.checkedAgainst}${isDefault}\n`,
      );
    }
    return 0;
  }
  if (opts.listFaults) {
    for (const fault of FAULTS) {
      const params = fault.params ? ` [${fault.params}]` : "";
      process.stdout.write(`${fault.name.padEnd(20)} ${fault.row.padEnd(3)} ${fault.summary}${params}\n`);
    }
    return 0;
  }
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`simulate: --port must be a port number, got "${opts.port}"\n`);
    return 2;
  }
  try {
    resolveProfile(opts.ollamaVersion);
  } catch (error) {
    process.stderr.write(`simulate: --ollama-version: ${(error as Error).message}\n`);
    return 2;
  }
  if (opts.fault && !findFault(opts.fault)) {
    process.stderr.write(`simulate: unknown fault "${opts.fault}" (see --list-faults)\n`);
    return 2;
  }
  let timing: Partial<SimulatorTiming> | undefined;
  let faultParams: Record<string, unknown> = {};
  try {
    timing = jsonEnv("OLLAMA_SIM_TIMING") as Partial<SimulatorTiming> | undefined;
    faultParams = (jsonEnv("OLLAMA_SIM_FAULT_PARAMS") as Record<string, unknown> | undefined) ?? {};
  } catch (error) {
    process.stderr.write(`simulate: ${(error as Error).message}\n`);
    return 2;
  }

  // The watchdog finds Ollama's server process by this command line.
  process.title = "ollama serve";
  const env = process.env;
  const simulator = await startSimulator({
    port,
    host: opts.host,
    ...(opts.ollamaVersion ? { ollamaVersion: opts.ollamaVersion } : {}),
    ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
    ...(opts.fault ? { fault: { ...faultParams, name: opts.fault } as FaultSpec } : {}),
    ...(timing ? { timing } : {}),
    ...(env.OLLAMA_NUM_PARALLEL ? { numParallel: Number(env.OLLAMA_NUM_PARALLEL) } : {}),
    ...(env.OLLAMA_MAX_QUEUE ? { maxQueue: Number(env.OLLAMA_MAX_QUEUE) } : {}),
    ...(env.OLLAMA_KEEP_ALIVE ? { keepAlive: env.OLLAMA_KEEP_ALIVE } : {}),
    serverLog: (line) => process.stderr.write(`${line}\n`),
    // A crash is a crash: the process exits (status 2, like a Go panic) and a supervisor restarts it.
    onCrash: () => process.exit(2),
  });
  process.stdout.write(
    `simulator listening on ${simulator.url} as Ollama ${simulator.profile.version} (nvidia-smi: ${simulator.nvidiaSmiPath}, journalctl: ${simulator.journalctlPath})\n`,
  );

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  process.stderr.write(`simulate: ${signal}, stopping\n`);
  await simulator.stop();
  return 0;
}

function jsonEnv(name: string): unknown {
  const text = process.env[name];
  if (!text) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === "object" && !Array.isArray(value)) return value;
  } catch {
    // reported below
  }
  throw new Error(`${name} must be a JSON object`);
}
