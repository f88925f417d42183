import { dirname } from "node:path";
import { ConfigError } from "../config/load.js";
import { isUnitName } from "../config/names.js";
import type { Config } from "../config/schema.js";
import { defaultLayout, type InstallLayout } from "./layout.js";

/**
 * The systemd unit, rendered from the layout and the config (DESIGN.md §9). The committed
 * deploy/systemd/ollama-watchdog.service is this render for the documented defaults
 * (`npm run build && node dist/cli.js install --dry-run` shows it; test/install/unit.test.ts
 * regenerates it with UPDATE_DEPLOY=1).
 *
 * Privilege model (docs/privileges.md): a dedicated system user holding only CAP_KILL (to SIGKILL
 * Ollama's runner, which runs as another user), and a polkit rule allowing that user exactly
 * `restart` of the Ollama unit(s). No other capability, no write access outside the state dir.
 */
export interface UnitInputs {
  layout: InstallLayout;
  stateDir: string;
  /** Other paths the service writes (the Prometheus textfile's directory). */
  extraWritablePaths: string[];
  watchdogSec: number;
  /** Extra groups: systemd-journal to read Ollama's journal, docker for the docker restart kind. */
  supplementaryGroups: string[];
  /** Hide /dev entirely (only when no GPU tool has to reach /dev/nvidia* or /dev/kfd). */
  privateDevices: boolean;
  /** Units ordered before the watchdog (the Ollama units it watches). */
  after: string[];
}

/**
 * systemd's watchdog timeout: a tick must complete within it. Three intervals, and at least three
 * times the longest collector deadline (a tick waits for those; nvidia-smi's only when a GPU backend
 * may run), never under 10 s.
 */
export function watchdogSecFor(config: Config): number {
  const gpuDeadlineMs = config.gpu.backend === "none" ? 0 : config.gpu.timeout;
  const longestDeadlineMs = Math.max(config.detection.apiTimeout, gpuDeadlineMs);
  const ms = Math.max(3 * config.interval, 3 * longestDeadlineMs, 10_000);
  return Math.ceil(ms / 1000);
}

/** "ollama" → "ollama.service": the name polkit and systemd see. */
export function fullUnitName(unit: string): string {
  return /\.(service|socket|target|timer|mount|scope|slice|path|device|swap|automount)$/.test(unit)
    ? unit
    : `${unit}.service`;
}

/** The systemd units the config restarts (restart kind `systemd`), deduplicated. */
export function restartUnitsOf(config: Config): string[] {
  const units = config.targets.flatMap((t) =>
    t.restart.systemd ? [fullUnitName(t.restart.systemd.unit)] : [],
  );
  return [...new Set(units)];
}

export function unitInputsFor(config: Config, layout: InstallLayout): UnitInputs {
  const usesDocker = config.targets.some((t) => t.restart.docker);
  const readsJournal = config.targets.some(
    (t) => t.journalUnit !== null && (t.journalUnit !== undefined || t.restart.systemd !== undefined),
  );
  const groups = [...(readsJournal ? ["systemd-journal"] : []), ...(usesDocker ? ["docker"] : [])];
  return {
    layout,
    stateDir: config.stateDir,
    extraWritablePaths: config.textfile ? [dirname(config.textfile)] : [],
    watchdogSec: watchdogSecFor(config),
    supplementaryGroups: groups,
    privateDevices: config.gpu.backend === "none",
    after: restartUnitsOf(config),
  };
}

/** A value that cannot go into a root-owned file: one line and exit 2, like any bad input. */
function refused(message: string): ConfigError {
  return new ConfigError(message, [message]);
}

/**
 * One word of a systemd file (unit, sysusers.d): `%` doubled (else it is a specifier such as %h),
 * quoted when it has anything but plain characters. A control character cannot be written safely
 * (a newline would start a new directive): refused.
 */
export function systemdWord(word: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  if (/[\x00-\x1f\x7f]/.test(word))
    throw refused(`${JSON.stringify(word)}: a control character cannot go into a systemd file`);
  const escaped = word.replace(/%/g, "%%");
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/(["\\])/g, "\\$1")}"`;
}

/** A unit name as systemd's grammar allows it (config/names.ts), or an error: never rendered raw. */
export function checkedUnitName(unit: string): string {
  if (!isUnitName(unit)) throw refused(`${JSON.stringify(unit)} is not a valid unit name`);
  return unit;
}

/** A system user/group name (the service user): letters, digits, '_', '-', '.'. */
export function checkedUserName(user: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(user))
    throw refused(`${JSON.stringify(user)} is not a valid user name`);
  return user;
}

export function execStartArgv(layout: InstallLayout): string[] {
  return [layout.nodePath, layout.cliPath, "run", "--config", layout.configPath];
}

/**
 * The sandbox and privileges, as [key, value] pairs: what the [Service] section says besides how
 * to start, and what the tests pass to `systemd-run -p` to try the same rights by hand.
 */
export function sandboxDirectives(inputs: UnitInputs): Array<[string, string]> {
  const writable = [inputs.stateDir, ...inputs.extraWritablePaths];
  const directives: Array<[string, string]> = [
    ["User", checkedUserName(inputs.layout.user)],
    ["Group", checkedUserName(inputs.layout.user)],
  ];
  if (inputs.supplementaryGroups.length) {
    directives.push(["SupplementaryGroups", inputs.supplementaryGroups.join(" ")]);
  }
  directives.push(
    // Only CAP_KILL: signal Ollama's runner (another user's process). Restarting the unit goes
    // through polkit (/etc/polkit-1/rules.d/50-ollama-watchdog.rules), not a capability.
    ["CapabilityBoundingSet", "CAP_KILL"],
    ["AmbientCapabilities", "CAP_KILL"],
    ["NoNewPrivileges", "yes"],
    ["UMask", "0027"],
    ["ProtectSystem", "strict"],
    ["ReadWritePaths", writable.map(systemdWord).join(" ")],
    ["ProtectHome", "yes"],
    ["PrivateTmp", "yes"],
    ["PrivateDevices", inputs.privateDevices ? "yes" : "no"],
    ["PrivateIPC", "yes"],
    ["ProtectKernelTunables", "yes"],
    ["ProtectKernelModules", "yes"],
    ["ProtectKernelLogs", "yes"],
    ["ProtectControlGroups", "yes"],
    ["ProtectHostname", "yes"],
    // ProtectClock=yes implies a device allow-list (DeviceAllow=char-rtc) that would hide
    // /dev/nvidia* from nvidia-smi; the clock syscalls are denied by ~@privileged anyway.
    ...(inputs.privateDevices ? ([["ProtectClock", "yes"]] as Array<[string, string]>) : []),
    // AF_UNIX: D-Bus (systemctl restart), the Docker socket, the notify socket.
    ["RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"],
    ["RestrictNamespaces", "yes"],
    ["RestrictRealtime", "yes"],
    ["RestrictSUIDSGID", "yes"],
    ["LockPersonality", "yes"],
    ["RemoveIPC", "yes"],
    ["SystemCallArchitectures", "native"],
    ["SystemCallFilter", "@system-service"],
    ["SystemCallFilter", "~@privileged @resources"],
    ["SystemCallErrorNumber", "EPERM"],
    // Not set, on purpose (docs/privileges.md): MemoryDenyWriteExecute (V8's JIT needs W+X pages),
    // ProtectProc=invisible (the watchdog reads Ollama's /proc/<pid>), PrivateUsers (CAP_KILL would
    // only reach processes inside the user namespace), PrivateNetwork (Ollama may be remote).
  );
  return directives;
}

export function serviceDirectives(inputs: UnitInputs): Array<[string, string]> {
  return [
    ["Type", "notify"],
    ["NotifyAccess", "all"],
    ["ExecStart", execStartArgv(inputs.layout).map(systemdWord).join(" ")],
    ["WatchdogSec", `${inputs.watchdogSec}s`],
    ["Restart", "on-failure"],
    ["RestartSec", "5s"],
    ["TimeoutStopSec", "30s"],
    ...sandboxDirectives(inputs),
  ];
}

export function renderUnit(inputs: UnitInputs): string {
  const after = ["network-online.target", ...inputs.after.map(checkedUnitName)].join(" ");
  const lines = [
    "# Written by `ollama-watchdog install`; `ollama-watchdog uninstall` removes it.",
    "# Edits are overwritten by the next install: change the config file instead, or add a drop-in.",
    "[Unit]",
    "Description=Ollama watchdog: detects a frozen Ollama and heals it",
    `Documentation=${systemdWord(`file:${docsPathOf(inputs.layout)}`)}`,
    // Ordering only: pulling network-online.target in would stall the start for minutes on a
    // host whose network never comes "online" (Ollama is usually on loopback anyway).
    `After=${after}`,
    // Keep retrying forever: a watchdog that gave up is the failure this project exists to prevent.
    "StartLimitIntervalSec=0",
    "",
    "[Service]",
    ...serviceDirectives(inputs).map(([key, value]) => `${key}=${value}`),
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ];
  return lines.join("\n");
}

/** The unit committed in deploy/systemd/: the default layout with the default config. */
export function renderDefaultUnit(config: Config): string {
  return renderUnit(unitInputsFor(config, defaultLayout()));
}

/** docs/install.md of the installed package (the package ships docs/ beside dist/). */
export function docsPathOf(layout: InstallLayout): string {
  return `${dirname(dirname(layout.cliPath))}/docs/install.md`;
}
