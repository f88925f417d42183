import { setFlagsFromString } from "node:v8";
import { loadConfig } from "../config/load.js";
import { createLogger } from "../core/log.js";
import { Watchdog } from "../daemon/watchdog.js";

/** `run`: the daemon, until SIGTERM/SIGINT (then a graceful stop and exit 0). */
export async function runCommand(opts: { config?: string; "web.config.file"?: string }): Promise<number> {
  // No optimizing compiler (TurboFan) for the daemon: a tick is I/O, JSON.parse and regexes (native
  // code either way) every 15 s, while TurboFan's code pages and optimized code cost ≈ 5 MB of
  // RSS (docs/performance.md, "Memory"). Set before any function is hot enough to be optimized.
  setFlagsFromString("--no-opt");
  const loaded = loadConfig(opts.config);
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
  return 0;
}
