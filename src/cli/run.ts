import { setFlagsFromString } from "node:v8";
import { loadConfig } from "../config/load.js";
import { createLogger } from "../core/log.js";
import { Watchdog } from "../daemon/watchdog.js";
import { loadWebConfig } from "../server/web-config.js";
import { OPTIMIZER_V8_FLAGS, STALL_GUARD_V8_FLAGS } from "./v8-flags.js";

/** `run`: the daemon, until SIGTERM/SIGINT (then a graceful stop and exit 0). */
export async function runCommand(opts: { config?: string; "web.config.file"?: string }): Promise<number> {
  // cli.ts set DAEMON_V8_FLAGS before the first import; a stall guard and bcrypt need speed back.
  const loaded = loadConfig(opts.config);
  const webConfig = opts["web.config.file"];
  const config = webConfig ? { ...loaded, webConfig } : loaded;
  const web = config.webConfig ? loadWebConfig(config.webConfig) : undefined;
  if (loaded.targets.some((t) => t.proxy)) setFlagsFromString(STALL_GUARD_V8_FLAGS);
  else if (web && web.users.size > 0) setFlagsFromString(OPTIMIZER_V8_FLAGS);
  const log = createLogger();
  const watchdog = await Watchdog.start({ config, log, ...(web ? { web } : {}) });
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
