import { setFlagsFromString } from "node:v8";
import { loadConfig } from "../config/load.js";
import { createLogger } from "../core/log.js";
import { Watchdog } from "../daemon/watchdog.js";

/** `run`: the daemon, until SIGTERM/SIGINT (then a graceful stop and exit 0). */
export async function runCommand(opts: { config?: string; "web.config.file"?: string }): Promise<number> {
  // The daemon trades speed it does not need for memory (docs/performance.md, "Memory"): a tick is
  // I/O, JSON.parse and regexes (native code either way) every 15 s. No optimizing compiler
  // (TurboFan: its code pages and optimized code, ≈ 5 MB of RSS; set before any function is hot
  // enough to be optimized), and V8's heap sized for memory, not throughput (a young generation
  // that stays small and a heap grown less eagerly: ≈ 10 MB). Not with a stall guard: proxying
  // every client's stream is a hot path that needs both.
  const loaded = loadConfig(opts.config);
  if (!loaded.targets.some((t) => t.proxy)) setFlagsFromString("--no-opt --optimize-for-size");
  const webConfig = opts["web.config.file"];
  const config = webConfig ? { ...loaded, webConfig } : loaded;
  const log = createLogger();
  const watchdog = await Watchdog.start({ config, log });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, "stopping");
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await watchdog.stop();
  // A procfs read stuck in the kernel (a runner in D state) keeps Node's event loop alive for as
  // long as the kernel holds it; the stop is complete, so it must not keep the process.
  setTimeout(() => process.exit(process.exitCode ?? 0), EXIT_GRACE_MS).unref();
  return 0;
}

/** After a graceful stop, how long the process may take to exit on its own. */
const EXIT_GRACE_MS = 1000;
