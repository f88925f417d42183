import { readFileSync, statSync } from "node:fs";
import { ConfigError, loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { type FetchFn, fetchJson } from "../core/http.js";
import { POLKIT_ACTION, POLKIT_VERB } from "./files.js";
import { defaultLayout, hostPath, type InstallLayout } from "./layout.js";
import { CAP_KILL_MASK, readIdentity } from "./procfs.js";
import {
  type Exec,
  failureText,
  type HealthBody,
  lastTickOf,
  listenUrl,
  lookupUser,
  showUnit,
  succeeded,
  type UnitProperties,
} from "./system.js";
import { renderUnit, restartUnitsOf, unitInputsFor } from "./unit.js";

/**
 * doctor: proves the installation works end to end. Each check is a small async function returning
 * data; the shell prints them (formatChecks) and exits 1 when any failed. A warning does not fail.
 */
export type CheckStatus = "pass" | "warn" | "fail" | "skip";

export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about it (failures and warnings). */
  hint?: string;
}

export interface DoctorDeps {
  exec: Exec;
  fetch?: FetchFn;
  procRoot?: string;
  now?: () => number;
  isRoot?: boolean;
}

const pass = (name: string, detail: string): CheckResult => ({ name, status: "pass", detail });
const fail = (name: string, detail: string, hint: string): CheckResult => ({
  name,
  status: "fail",
  detail,
  hint,
});
const warn = (name: string, detail: string, hint: string): CheckResult => ({
  name,
  status: "warn",
  detail,
  hint,
});
const skip = (name: string, detail: string): CheckResult => ({ name, status: "skip", detail });

const SYMBOL: Record<CheckStatus, string> = { pass: "✓", warn: "!", fail: "✗", skip: "-" };

/** Pure: the report a person reads. */
export function formatChecks(results: CheckResult[]): string {
  const lines = results.map((r) => {
    const head = `${SYMBOL[r.status]} ${r.name}: ${r.detail}`;
    return r.hint && r.status !== "pass" ? `${head}\n    fix: ${r.hint}` : head;
  });
  const failed = results.filter((r) => r.status === "fail").length;
  const warned = results.filter((r) => r.status === "warn").length;
  lines.push(
    failed
      ? `${failed} check${failed > 1 ? "s" : ""} failed${warned ? `, ${warned} warning${warned > 1 ? "s" : ""}` : ""}`
      : `all checks passed${warned ? ` (${warned} warning${warned > 1 ? "s" : ""})` : ""}`,
  );
  return lines.join("\n");
}

export function doctorExitCode(results: CheckResult[]): number {
  return results.some((r) => r.status === "fail") ? 1 : 0;
}

/** Pure: node path, CLI path and config path from the unit's ExecStart= line. */
export function parseExecStart(
  unitText: string,
): { nodePath: string; cliPath: string; configPath?: string } | undefined {
  const line = /^ExecStart=(.+)$/m.exec(unitText)?.[1];
  if (!line) return undefined;
  const words = line.trim().split(/\s+/);
  const [nodePath, cliPath] = words;
  if (!nodePath || !cliPath) return undefined;
  const at = words.indexOf("--config");
  const configPath = at >= 0 ? words[at + 1] : undefined;
  return configPath ? { nodePath, cliPath, configPath } : { nodePath, cliPath };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

export async function runDoctor(
  options: { config?: string; root?: string; layout?: Partial<InstallLayout> },
  deps: DoctorDeps,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const base = defaultLayout(options.layout);
  const unitText = readText(hostPath(options.root, base.unitPath));
  const fromUnit = unitText ? parseExecStart(unitText) : undefined;
  const configPath = options.config ?? fromUnit?.configPath ?? base.configPath;
  const layout: InstallLayout = { ...base, ...(fromUnit ?? {}), configPath };

  // Installed: the unit, the manifest, the polkit rule.
  if (!unitText) {
    results.push(
      fail(
        "installed",
        `no unit at ${hostPath(options.root, layout.unitPath)}`,
        "sudo ollama-watchdog install",
      ),
    );
  } else {
    results.push(pass("installed", `${layout.unitPath} runs ${layout.cliPath}`));
  }

  // Config valid (and the unit matches what install would write for it).
  let config: Config | undefined;
  try {
    const staged = options.root ? hostPath(options.root, configPath) : configPath;
    config = loadConfig(readText(staged) === undefined && !options.config ? undefined : staged);
    results.push(
      pass("config valid", readText(staged) === undefined ? "no config file: built-in defaults" : staged),
    );
  } catch (error) {
    const detail = error instanceof ConfigError ? error.message.replace(/\n/g, "; ") : String(error);
    results.push(fail("config valid", detail, `ollama-watchdog config check ${configPath}`));
  }
  if (config && unitText) {
    const expected = renderUnit(unitInputsFor(config, layout));
    if (expected !== unitText) {
      results.push(
        warn(
          "unit up to date",
          "the unit differs from what install writes for this config (config or package changed?)",
          "sudo ollama-watchdog install (it rewrites the unit and restarts the service)",
        ),
      );
    } else {
      results.push(pass("unit up to date", "matches the config"));
    }
  }
  const rule = readText(hostPath(options.root, layout.polkitRulePath));
  if (!rule) {
    results.push(fail("polkit rule", `missing: ${layout.polkitRulePath}`, "sudo ollama-watchdog install"));
  } else if (config && restartUnitsOf(config).some((u) => !rule.includes(JSON.stringify(u)))) {
    results.push(
      fail("polkit rule", "does not name every unit the config restarts", "sudo ollama-watchdog install"),
    );
  }

  if (options.root) {
    results.push(skip("service", `staged under ${options.root}: nothing runs there to check`));
    return results;
  }

  const properties = await showUnit(deps.exec, layout.unitName);
  results.push(...serviceChecks(properties, layout));
  const mainPid = Number(properties?.MainPID ?? 0);
  const user = await lookupUser(deps.exec, layout.user);
  results.push(identityCheck(mainPid, user?.uid, layout.user, deps.procRoot ?? "/proc"));
  if (config) {
    results.push(stateDirCheck(config.stateDir, user));
    results.push(...(await httpChecks(config, deps)));
    results.push(...(await ollamaChecks(config, deps)));
    results.push(...(await restartRightChecks(config, mainPid, deps)));
    results.push(await nvidiaCheck(config, deps));
  }
  return results;
}

function serviceChecks(properties: UnitProperties | undefined, layout: InstallLayout): CheckResult[] {
  if (!properties) {
    return [
      fail("systemd", "systemctl gave no answer", "is this a systemd host? (see docs/install.md for Docker)"),
    ];
  }
  const enabled = properties.UnitFileState === "enabled";
  const active = properties.ActiveState === "active";
  return [
    enabled
      ? pass("enabled at boot", `${layout.unitName} is enabled`)
      : fail(
          "enabled at boot",
          `${layout.unitName} is ${properties.UnitFileState || "unknown"}`,
          `sudo systemctl enable ${layout.unitName}`,
        ),
    active
      ? pass("active", `${layout.unitName} is active (${properties.SubState}), pid ${properties.MainPID}`)
      : fail(
          "active",
          `${layout.unitName} is ${properties.ActiveState} (${properties.SubState})`,
          `sudo systemctl start ${layout.unitName}; journalctl -u ${layout.unitName} -n 50`,
        ),
  ];
}

function identityCheck(
  mainPid: number,
  uid: number | undefined,
  userName: string,
  procRoot: string,
): CheckResult {
  const name = "runs as the service user with CAP_KILL only";
  if (!mainPid) return fail(name, "the service has no main process", "start the service first");
  if (uid === undefined) return fail(name, `no user ${userName}`, "sudo ollama-watchdog install");
  const identity = readIdentity(procRoot, mainPid);
  if (!identity)
    return fail(name, `cannot read ${procRoot}/${mainPid}/status`, "run doctor on the host itself");
  if (identity.uids.some((u) => u !== uid)) {
    return fail(
      name,
      `pid ${mainPid} runs as uid ${identity.uids.join("/")}, not ${userName} (${uid})`,
      "sudo ollama-watchdog install",
    );
  }
  if (identity.capEff !== CAP_KILL_MASK || identity.capBnd !== CAP_KILL_MASK) {
    const hex = (v: bigint) => `0x${v.toString(16)}`;
    const detail = `effective ${hex(identity.capEff)}, bounding ${hex(identity.capBnd)} (expected ${hex(CAP_KILL_MASK)}: CAP_KILL)`;
    return fail(name, detail, "sudo ollama-watchdog install (a drop-in may have changed the capabilities)");
  }
  return pass(name, `pid ${mainPid}: uid ${uid} (${userName}), capabilities: CAP_KILL`);
}

function stateDirCheck(stateDir: string, user: { uid: number; gid: number } | undefined): CheckResult {
  const name = "state dir writable";
  try {
    const stat = statSync(stateDir);
    if (!stat.isDirectory())
      return fail(name, `${stateDir} is not a directory`, `remove it, then sudo ollama-watchdog install`);
    if (user && stat.uid === user.uid && (stat.mode & 0o200) !== 0) {
      return pass(name, `${stateDir} is owned by the service user, mode 0${(stat.mode & 0o777).toString(8)}`);
    }
    return fail(
      name,
      `${stateDir} is owned by uid ${stat.uid}, mode 0${(stat.mode & 0o777).toString(8)}`,
      `sudo chown -R ollama-watchdog: ${stateDir}`,
    );
  } catch {
    return fail(name, `${stateDir} does not exist`, "sudo ollama-watchdog install");
  }
}

async function httpChecks(config: Config, deps: DoctorDeps): Promise<CheckResult[]> {
  const base = listenUrl(config.listen);
  const fetchOptions = { timeoutMs: 3000, ...(deps.fetch ? { fetch: deps.fetch } : {}) };
  const health = await fetchJson<HealthBody>(`${base}/healthz`, fetchOptions);
  const results: CheckResult[] = [
    health.ok
      ? pass("/healthz answers", `${base}/healthz → ${health.status}`)
      : fail("/healthz answers", `${base}/healthz: ${health.error}`, `journalctl -u ollama-watchdog -n 50`),
  ];
  const metrics = await fetchText(`${base}/metrics`, deps.fetch);
  results.push(
    metrics.ok
      ? pass("/metrics answers", `${base}/metrics → ${metrics.status}, ${metrics.lines} lines`)
      : fail("/metrics answers", `${base}/metrics: ${metrics.error}`, `journalctl -u ollama-watchdog -n 50`),
  );
  const last = lastTickOf(health.body);
  const now = (deps.now ?? Date.now)();
  const limit = Math.max(3 * config.interval, 30_000);
  if (last === undefined) {
    results.push(fail("last tick recent", "no tick reported", "journalctl -u ollama-watchdog -n 50"));
  } else if (now - last > limit) {
    results.push(
      fail(
        "last tick recent",
        `last tick ${Math.round((now - last) / 1000)}s ago`,
        "the loop is stuck: sudo systemctl restart ollama-watchdog",
      ),
    );
  } else {
    results.push(
      pass("last tick recent", `${Math.round((now - last) / 1000)}s ago, ${health.body?.ticks ?? "?"} ticks`),
    );
  }
  return results;
}

async function fetchText(
  url: string,
  fetchFn: FetchFn | undefined,
): Promise<{ ok: boolean; status?: number; lines?: number; error?: string }> {
  try {
    const response = await (fetchFn ?? fetch)(url, { signal: AbortSignal.timeout(3000) });
    const text = await response.text();
    if (!response.ok) return { ok: false, status: response.status, error: `HTTP ${response.status}` };
    return { ok: true, status: response.status, lines: text.split("\n").filter(Boolean).length };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

async function ollamaChecks(config: Config, deps: DoctorDeps): Promise<CheckResult[]> {
  return Promise.all(
    config.targets.map(async (target) => {
      const name = `Ollama reachable (${target.name})`;
      const version = await fetchJson<{ version?: string }>(`${target.url}/api/version`, {
        timeoutMs: config.detection.apiTimeout,
        ...(deps.fetch ? { fetch: deps.fetch } : {}),
      });
      return version.ok
        ? pass(name, `${target.url}: version ${version.body?.version ?? "?"}`)
        : fail(
            name,
            `${target.url}: ${version.error}`,
            "systemctl status ollama; check the target url in the config",
          );
    }),
  );
}

async function restartRightChecks(config: Config, mainPid: number, deps: DoctorDeps): Promise<CheckResult[]> {
  const units = restartUnitsOf(config);
  if (units.length === 0) return [skip("restart right", "no target restarts a systemd unit")];
  if (!mainPid)
    return [fail("restart right granted", "the service is not running: cannot ask polkit", "start it")];
  if (deps.isRoot === false) {
    return [
      warn(
        "restart right granted",
        "only root may ask polkit on the service's behalf",
        "sudo ollama-watchdog doctor",
      ),
    ];
  }
  const ask = (unit: string, verb: string) =>
    deps.exec(
      [
        "pkcheck",
        "--action-id",
        POLKIT_ACTION,
        "--process",
        String(mainPid),
        "--detail",
        "unit",
        unit,
        "--detail",
        "verb",
        verb,
      ],
      10_000,
    );
  const results: CheckResult[] = [];
  for (const unit of units) {
    const allowed = await ask(unit, POLKIT_VERB);
    results.push(
      succeeded(allowed)
        ? pass(`restart right granted (${unit})`, `polkit allows the service to restart ${unit}`)
        : fail(
            `restart right granted (${unit})`,
            allowed.spawnError ? failureText(allowed) : `polkit says no (exit ${allowed.exitCode})`,
            "sudo ollama-watchdog install (writes the polkit rule); is polkitd installed and running?",
          ),
    );
    const stop = await ask(unit, "stop");
    if (succeeded(stop)) {
      results.push(
        warn(
          `no broader right (${unit})`,
          `polkit also lets the service stop ${unit}`,
          "another polkit rule grants more than restart: review /etc/polkit-1/rules.d",
        ),
      );
    }
  }
  return results;
}

async function nvidiaCheck(config: Config, deps: DoctorDeps): Promise<CheckResult> {
  const name = "nvidia-smi answers";
  if (config.gpu.backend === "none" || config.gpu.backend === "rocm") {
    return skip(name, `gpu.backend is ${config.gpu.backend}`);
  }
  const result = await deps.exec(
    [config.gpu.nvidiaSmi, "--query-gpu=index,name", "--format=csv,noheader"],
    config.gpu.timeout,
  );
  if (result.spawnError) {
    return config.gpu.backend === "nvidia"
      ? fail(
          name,
          `${config.gpu.nvidiaSmi}: ${result.spawnError}`,
          "install the NVIDIA driver utilities, or set gpu.nvidiaSmi",
        )
      : warn(
          name,
          `${config.gpu.nvidiaSmi} not found: no GPU signals (fine on a CPU-only host)`,
          "set gpu.backend: none to silence this",
        );
  }
  if (result.timedOut) {
    return fail(
      name,
      `no answer within ${config.gpu.timeout}ms (a hung driver?)`,
      "nvidia-smi by hand; a reboot may be needed",
    );
  }
  if (!succeeded(result)) return fail(name, failureText(result), "nvidia-smi by hand");
  const gpus = result.stdout.trim().split("\n").filter(Boolean);
  return pass(
    name,
    `${gpus.length} GPU${gpus.length === 1 ? "" : "s"}: ${gpus.join("; ")} (${Math.round(result.durationMs)}ms)`,
  );
}
