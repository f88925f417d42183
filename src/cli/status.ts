import { loadConfig } from "../config/load.js";
import { formatStatus, gatherStatus } from "../install/status-report.js";
import { defaultExec } from "../install/system.js";

/**
 * `status`: Ollama and the watchdog at one glance (src/install/status-report.ts). Works without a
 * running watchdog (says so). Exit 0 when Ollama answers, 1 when it does not.
 */
export async function statusCommand(opts: {
  config?: string;
  json?: boolean;
  url?: string;
}): Promise<number> {
  const config = loadConfig(opts.config);
  const report = await gatherStatus(config, { exec: defaultExec, ...(opts.url ? { url: opts.url } : {}) });
  process.stdout.write(
    opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatStatus(report, Date.now())}\n`,
  );
  return report.ollama.up ? 0 : 1;
}
