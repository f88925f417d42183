import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { load as parse } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/paths.js";
import {
  type Alertmanager,
  type AlertmanagerNotification,
  startAlertmanager,
  startWebhook,
  type Webhook,
} from "../support/prometheus.js";

/**
 * deploy/prometheus/fleet/alertmanager.yml in a real Alertmanager: one notification per host
 * (instance) with all of that host's alerts, critical ones paged, and "frozen" or canary alerts
 * silenced on a host whose Ollama is down.
 */
const EXAMPLE = join(ROOT, "deploy/prometheus/fleet/alertmanager.yml");

interface Route {
  group_wait?: string;
  group_interval?: string;
  routes?: Route[];
}
interface Receiver {
  name: string;
  webhook_configs?: { url: string }[];
}

/** The example with every webhook pointed at `url` and its waits scaled to a second. */
function exampleFor(url: string): Record<string, unknown> {
  const config = parse(readFileSync(EXAMPLE, "utf8")) as { route: Route; receivers: Receiver[] };
  const scale = (route: Route) => {
    if (route.group_wait) route.group_wait = "1s";
    if (route.group_interval) route.group_interval = "1s";
    for (const child of route.routes ?? []) scale(child);
  };
  scale(config.route);
  for (const receiver of config.receivers) for (const hook of receiver.webhook_configs ?? []) hook.url = url;
  return config as unknown as Record<string, unknown>;
}

function alert(instance: string, alertname: string, severity: "critical" | "warning") {
  return {
    labels: { alertname, severity, instance, target: "default", job: "ollama-watchdog" },
    annotations: { summary: `${alertname} on ${instance}` },
    startsAt: new Date().toISOString(),
  };
}

const names = (n: AlertmanagerNotification) => n.alerts.map((a) => a.labels.alertname).sort();

describe("the fleet's Alertmanager example", () => {
  let hook: Webhook;
  let am: Alertmanager;

  beforeAll(async () => {
    hook = await startWebhook();
    am = await startAlertmanager({ config: exampleFor(hook.url) });
  });

  afterAll(async () => {
    await am?.stop();
    await hook?.stop();
  });

  it("passes amtool check-config as shipped", () => {
    const check = spawnSync("/usr/bin/amtool", ["check-config", EXAMPLE], { encoding: "utf8" });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
  });

  it("groups by host, pages critical alerts, and silences frozen under down", async () => {
    const posted = await fetch(`${am.url}/api/v2/alerts`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([
        alert("gpu1:11464", "OllamaCanarySlow", "warning"),
        alert("gpu1:11464", "OllamaCanaryFailing", "warning"),
        alert("gpu2:11464", "OllamaCanarySlow", "warning"),
        alert("gpu3:11464", "OllamaDown", "critical"),
        alert("gpu3:11464", "OllamaFrozen", "critical"),
      ]),
    });
    expect(posted.status).toBe(200);
    const forHost = (instance: string) => (n: AlertmanagerNotification) =>
      n.groupLabels.instance === instance;

    const gpu1 = await hook.waitFor(forHost("gpu1:11464"));
    expect({ receiver: gpu1.receiver, groupLabels: gpu1.groupLabels, alerts: names(gpu1) }).toEqual({
      receiver: "ops",
      groupLabels: { instance: "gpu1:11464" },
      alerts: ["OllamaCanaryFailing", "OllamaCanarySlow"],
    });
    const gpu2 = await hook.waitFor(forHost("gpu2:11464"));
    expect({ receiver: gpu2.receiver, alerts: names(gpu2) }).toEqual({
      receiver: "ops",
      alerts: ["OllamaCanarySlow"],
    });
    const gpu3 = await hook.waitFor(forHost("gpu3:11464"));
    expect({ receiver: gpu3.receiver, alerts: names(gpu3) }).toEqual({
      receiver: "ops-page",
      alerts: ["OllamaDown"],
    });

    const frozen = (await am.alerts()).find(
      (a) => a.labels.alertname === "OllamaFrozen" && a.labels.instance === "gpu3:11464",
    );
    expect(frozen?.status.state).toBe("suppressed");
    // One notification per host, none of them mixing hosts.
    expect(hook.notifications.every((n) => new Set(n.alerts.map((a) => a.labels.instance)).size === 1)).toBe(
      true,
    );
  });
});
