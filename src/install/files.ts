import { dump as stringify } from "js-yaml";
import type { Config } from "../config/schema.js";
import { checkedUnitName, checkedUserName, systemdWord } from "./unit.js";

/**
 * The other files install writes, rendered as text (pure). The unit is in unit.ts.
 */

/** The only polkit action and verb the service user is granted (docs/privileges.md). */
export const POLKIT_ACTION = "org.freedesktop.systemd1.manage-units";
export const POLKIT_VERB = "restart";

/**
 * A polkit rule (polkit ≥ 0.106, JavaScript; ES5 only — polkit 122 embeds duktape) that lets the
 * service user restart exactly the given units, and nothing else: no stop, no start, no other
 * unit, no other action. Without a match polkit falls through to its defaults (auth_admin), which
 * a non-interactive service can never satisfy.
 */
export function renderPolkitRule(user: string, units: string[]): string {
  // Checked names only: a newline in a comment line, or a quote in a literal, would be live code.
  checkedUserName(user);
  for (const unit of units) checkedUnitName(unit);
  const unitList = units.map(jsString).join(", ");
  return [
    '// Written by "ollama-watchdog install"; "ollama-watchdog uninstall" removes it.',
    `// Lets the user ${user} restart ${units.join(", ") || "(no unit)"} and do nothing else.`,
    "polkit.addRule(function (action, subject) {",
    `  var units = [${unitList}];`,
    `  if (action.id == ${jsString(POLKIT_ACTION)} &&`,
    `      subject.user == ${jsString(user)} &&`,
    `      action.lookup("verb") == ${jsString(POLKIT_VERB)} &&`,
    '      units.indexOf(action.lookup("unit")) >= 0) {',
    "    return polkit.Result.YES;",
    "  }",
    "});",
    "",
  ].join("\n");
}

/** A JavaScript string literal, also for ES5 engines (U+2028/2029 end a line there). */
function jsString(text: string): string {
  return JSON.stringify(text)
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** systemd-sysusers(8): a system user and group, no login, home = the state dir. */
export function renderSysusers(user: string, stateDir: string): string {
  return [
    "# Written by `ollama-watchdog install`; `ollama-watchdog uninstall` removes it (and the user).",
    `u ${checkedUserName(user)} - "Ollama watchdog" ${systemdWord(stateDir)} /usr/sbin/nologin`,
    "",
  ].join("\n");
}

/**
 * The default config install writes when none exists: the built-in defaults, spelled out so a
 * person can edit them (DESIGN.md §6). Durations come back as text.
 */
export function renderDefaultConfig(config: Config): string {
  const ms = (value: number) => formatMs(value);
  const document = {
    interval: ms(config.interval),
    listen: config.listen,
    stateDir: config.stateDir,
    textfile: config.textfile,
    targets: config.targets.map((t) => ({
      name: t.name,
      url: t.url,
      restart: t.restart.systemd
        ? { systemd: { unit: t.restart.systemd.unit } }
        : t.restart.docker
          ? {
              docker: {
                container: t.restart.docker.container,
                socket: t.restart.docker.socket,
                timeout: ms(t.restart.docker.timeout),
              },
            }
          : {
              command: {
                argv: t.restart.command?.argv ?? [],
                timeout: ms(t.restart.command?.timeout ?? 60_000),
              },
            },
      processes: { server: t.processes.server, runner: t.processes.runner },
      ...(t.proxy
        ? {
            proxy: {
              listen: t.proxy.listen,
              holdFor: ms(t.proxy.holdFor),
              maxTokenGap: t.proxy.maxTokenGap === null ? null : ms(t.proxy.maxTokenGap),
            },
          }
        : {}),
    })),
    detection: {
      apiTimeout: ms(config.detection.apiTimeout),
      downAfter: config.detection.downAfter,
      freezeAfter: ms(config.detection.freezeAfter),
      gpuBusyAbove: config.detection.gpuBusyAbove,
      startupGrace: ms(config.detection.startupGrace),
      loadGrace: ms(config.detection.loadGrace),
      canary: {
        every: ms(config.detection.canary.every),
        timeout: ms(config.detection.canary.timeout),
        prompt: config.detection.canary.prompt,
      },
    },
    remediation: {
      ladder: config.remediation.ladder,
      cooldown: ms(config.remediation.cooldown),
      budget: { max: config.remediation.budget.max, window: ms(config.remediation.budget.window) },
      verifyWithin: ms(config.remediation.verifyWithin),
      dryRun: config.remediation.dryRun,
    },
    gpu: {
      backend: config.gpu.backend,
      nvidiaSmi: config.gpu.nvidiaSmi,
      rocmSmi: config.gpu.rocmSmi,
      timeout: ms(config.gpu.timeout),
    },
  };
  return [
    "# ollama-watchdog configuration (docs: DESIGN.md §6). Written by `ollama-watchdog install`",
    "# because none existed; edit it, then `systemctl restart ollama-watchdog` (or install again).",
    "# Validate with: ollama-watchdog config check /etc/ollama-watchdog/config.yaml",
    stringify(document),
  ].join("\n");
}

/** Milliseconds as the shortest exact duration string the config accepts: 60000 → "60s", 3600000 → "1h". */
export function formatMs(ms: number): string {
  const units: Array<[string, number]> = [
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ];
  for (const [unit, size] of units) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
