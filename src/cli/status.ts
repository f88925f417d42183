import { loadConfig } from "../config/load.js";
import { fetchFleet, formatFleet, peersFromConfig, rowHealthy } from "../fleet/fleet.js";
import { formatStatus, gatherStatus, statusHealthy } from "../install/status-report.js";
import { defaultExec } from "../install/system.js";

/** How long `status` waits for each peer watchdog. */
const PEER_TIMEOUT_MS = 3000;

/**
 * `status`: Ollama and the watchdog at one glance (src/install/status-report.ts), or with several
 * `--url`s (or `fleet:` in the config) one line per watchdog of the fleet (src/fleet/fleet.ts).
 * Exit 0 only when everything is healthy: Ollama answers, the watchdog runs, every target is
 * healthy (or starting); otherwise 1.
 */
export async function statusCommand(opts: {
  config?: string;
  json?: boolean;
  url?: string[];
}): Promise<number> {
  const config = loadConfig(opts.config);
  const urls = opts.url ?? [];
  if (urls.length > 1 || (urls.length === 0 && config.fleet.length > 0)) {
    const peers = peersFromConfig(urls.length ? urls.map((url) => ({ url })) : config.fleet);
    const rows = await fetchFleet(peers, { timeoutMs: PEER_TIMEOUT_MS });
    process.stdout.write(
      opts.json ? `${JSON.stringify({ hosts: rows }, null, 2)}\n` : `${formatFleet(rows, Date.now())}\n`,
    );
    return rows.every(rowHealthy) ? 0 : 1;
  }
  const url = urls[0];
  const report = await gatherStatus(config, { exec: defaultExec, ...(url ? { url } : {}) });
  process.stdout.write(
    opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatStatus(report, Date.now())}\n`,
  );
  return statusHealthy(report) ? 0 : 1;
}
