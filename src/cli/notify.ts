import { loadConfig } from "../config/load.js";
import { systemClock } from "../core/clock.js";
import { silentLogger } from "../core/log.js";
import { humanDuration } from "../incidents/format.js";
import { Notifications } from "../notify/notifications.js";

/**
 * `notify test`: one test message to every configured receiver, one attempt each under
 * `notify.timeout`; prints each result. Exit 0 when all arrived, 1 when any failed or none is
 * configured, 2 for a bad config.
 */
export async function notifyTestCommand(opts: { config?: string }): Promise<number> {
  const config = loadConfig(opts.config);
  const notifications = new Notifications({
    config: config.notify,
    listenUrl: `http://${config.listen}`,
    clock: systemClock,
    log: silentLogger(),
  });
  if (!notifications.receivers) {
    process.stderr.write(
      "no receivers configured (notify.receivers in the config; see docs/notifications.md)\n",
    );
    return 1;
  }
  const results = await notifications.sendTest();
  for (const r of results) {
    process.stdout.write(
      r.ok
        ? `ok    ${r.receiver} (${r.kind}): delivered in ${humanDuration(r.ms ?? 0)}\n`
        : `FAIL  ${r.receiver} (${r.kind}): ${r.error}\n`,
    );
  }
  const failed = results.filter((r) => !r.ok).length;
  process.stdout.write(`${results.length - failed} of ${results.length} receivers reached\n`);
  return failed ? 1 : 0;
}
