import { parseDuration } from "../config/duration.js";
import { ConfigError, loadConfig } from "../config/load.js";
import { type FrozenProcess, formatDrill, runDrill, thaw } from "../install/drill.js";

/**
 * `drill`: freeze a live Ollama's runner and time the watchdog's detection and recovery
 * (src/install/drill.ts). Ctrl-C, SIGTERM, an error or the exit itself always resume the runner.
 * Exit 0 when recovered, 1 otherwise.
 */
export async function drillCommand(opts: {
  config?: string;
  target?: string;
  timeout: string;
  json?: boolean;
}): Promise<number> {
  const config = loadConfig(opts.config);
  const timeoutMs = parseDuration(opts.timeout);
  if (timeoutMs === undefined) {
    throw new ConfigError(`--timeout: expected a duration like "10m", got "${opts.timeout}"`, []);
  }
  const procRoot = config.procRoot;
  const kill = (pid: number, signal: NodeJS.Signals) => process.kill(pid, signal);
  let frozen: FrozenProcess | undefined;
  const lastResort = () => {
    if (frozen) thaw(frozen, procRoot, kill);
  };
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    lastResort();
    abort.abort(signal);
  };
  process.on("exit", lastResort);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const report = await runDrill(
      config,
      { ...(opts.target ? { target: opts.target } : {}), timeoutMs },
      {
        procRoot,
        kill,
        now: () => Date.now(),
        sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        print: opts.json ? () => {} : (line) => process.stdout.write(`${line}\n`),
        onFrozen: (f) => {
          frozen = f;
        },
        signal: abort.signal,
      },
    );
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDrill(report)}\n`);
    return report.outcome === "recovered" ? 0 : 1;
  } finally {
    lastResort();
    process.off("exit", lastResort);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
