import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import type { ExecResult } from "../core/exec.js";
import { writeFileAtomic } from "../core/fs.js";
import { type FetchFn, fetchJson } from "../core/http.js";
import { hostPath } from "./layout.js";
import type { Manifest, Observed, ObservedPath, Step } from "./plan.js";
import {
  type Exec,
  failureText,
  type HealthBody,
  lastTickOf,
  lookupGroupId,
  lookupUser,
  showUnit,
  succeeded,
  unitSummary,
} from "./system.js";

/**
 * The imperative shell of install/uninstall: look at the system (observe), carry out a plan's
 * steps (applyPlan), and check the service really runs (verifyService).
 */

export function observePath(root: string | undefined, path: string): ObservedPath {
  const real = hostPath(root, path);
  try {
    const stat = lstatSync(real);
    const observed: ObservedPath = { exists: true, mode: stat.mode, uid: stat.uid, gid: stat.gid };
    if (stat.isFile()) observed.content = readFileSync(real, "utf8");
    return observed;
  } catch {
    return { exists: false };
  }
}

export async function observe(options: {
  paths: string[];
  root?: string;
  live: boolean;
  user: string;
  unitName: string;
  manifestPath: string;
  exec: Exec;
}): Promise<Observed> {
  const paths: Record<string, ObservedPath> = {};
  for (const path of new Set([...options.paths, options.manifestPath]))
    paths[path] = observePath(options.root, path);
  const observed: Observed = { paths };
  const manifestText = paths[options.manifestPath]?.content;
  if (manifestText) {
    try {
      observed.manifest = JSON.parse(manifestText) as Manifest;
    } catch {
      // A broken manifest is treated as none; install rewrites it.
    }
  }
  if (options.live) {
    const user = await lookupUser(options.exec, options.user);
    if (user) observed.user = { uid: user.uid, gid: user.gid };
    observed.unit = unitSummary(await showUnit(options.exec, options.unitName));
  }
  return observed;
}

export interface StepOutcome {
  step: Step;
  ok: boolean;
  error?: string;
  result?: ExecResult;
}

/**
 * Carries out the steps in order and stops at the first failure. Under a staging root (`root`)
 * it never chowns and never runs a program: the plan has no such steps there.
 */
export async function applyPlan(
  steps: Step[],
  options: { root?: string; exec: Exec; onStep?: (outcome: StepOutcome) => void },
): Promise<StepOutcome[]> {
  const outcomes: StepOutcome[] = [];
  const live = !options.root;
  for (const step of steps) {
    let outcome: StepOutcome;
    try {
      outcome = await applyStep(step, live, options);
    } catch (error) {
      outcome = { step, ok: false, error: (error as Error).message };
    }
    outcomes.push(outcome);
    options.onStep?.(outcome);
    if (!outcome.ok) break;
  }
  return outcomes;
}

async function applyStep(
  step: Step,
  live: boolean,
  options: { root?: string; exec: Exec },
): Promise<StepOutcome> {
  const real = (path: string) => hostPath(options.root, path);
  switch (step.kind) {
    case "write-file": {
      writeFileAtomic(real(step.path), step.content, step.mode);
      chmodSync(real(step.path), step.mode); // the umask narrowed the create mode
      if (live && step.group) await chownTo(options.exec, real(step.path), undefined, step.group);
      return { step, ok: true };
    }
    case "set-access": {
      chmodSync(real(step.path), step.mode);
      if (live && step.group) await chownTo(options.exec, real(step.path), undefined, step.group);
      return { step, ok: true };
    }
    case "make-dir": {
      mkdirSync(real(step.path), { recursive: true, mode: step.mode });
      chmodSync(real(step.path), step.mode);
      if (live) await chownTo(options.exec, real(step.path), step.owner, step.owner);
      return { step, ok: true };
    }
    case "run": {
      // systemctl start waits for READY=1 (Type=notify): allow for a slow first start.
      const result = await options.exec(step.argv, 120_000);
      if (succeeded(result) || step.mayFail) return { step, ok: true, result };
      return { step, ok: false, result, error: failureText(result) };
    }
    case "remove-file":
      rmSync(real(step.path), { force: true });
      return { step, ok: true };
    case "remove-dir":
      if (step.recursive) rmSync(real(step.path), { recursive: true, force: true });
      else {
        try {
          rmdirSync(real(step.path));
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code !== "ENOENT" && code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
        }
      }
      return { step, ok: true };
    case "remove-user": {
      const result = await options.exec(["userdel", step.user], 30_000);
      if (!succeeded(result)) return { step, ok: false, result, error: failureText(result) };
      // userdel removes the user's own group only when USERGROUPS_ENAB says so.
      if ((await lookupGroupId(options.exec, step.user)) !== undefined) {
        const group = await options.exec(["groupdel", step.user], 30_000);
        if (!succeeded(group)) return { step, ok: false, result: group, error: failureText(group) };
      }
      return { step, ok: true, result };
    }
  }
}

async function chownTo(exec: Exec, path: string, user: string | undefined, group: string): Promise<void> {
  const uid = user === undefined ? 0 : (await lookupUser(exec, user))?.uid;
  const gid = await lookupGroupId(exec, group);
  if (uid === undefined) throw new Error(`no user ${user} to own ${path}`);
  if (gid === undefined) throw new Error(`no group ${group} to own ${path}`);
  chownSync(path, uid, gid);
}

export interface VerifyCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/**
 * After install: the unit is active, /healthz answers 200 and a first tick ran. Polls until all
 * hold or the deadline passes; on failure the journal's last lines say why.
 */
export async function verifyService(options: {
  unitName: string;
  healthUrl: string;
  timeoutMs: number;
  exec: Exec;
  fetch?: FetchFn;
  everyMs?: number;
}): Promise<{ ok: boolean; checks: VerifyCheck[]; journal?: string }> {
  const deadline = performance.now() + options.timeoutMs;
  let checks: VerifyCheck[] = [];
  for (;;) {
    const properties = await showUnit(options.exec, options.unitName);
    const active = properties?.ActiveState === "active";
    const health = await fetchJson<HealthBody>(options.healthUrl, {
      timeoutMs: 3000,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    const ticked = health.ok && ((health.body?.ticks ?? 0) >= 1 || lastTickOf(health.body) !== undefined);
    checks = [
      {
        name: "service active",
        ok: active,
        detail: `${options.unitName} is ${properties?.ActiveState ?? "unknown"} (${properties?.SubState ?? "?"})`,
      },
      {
        name: "/healthz answers",
        ok: health.ok,
        detail: health.ok
          ? `${options.healthUrl} → ${health.status}`
          : `${options.healthUrl}: ${health.error}`,
      },
      {
        name: "a first tick ran",
        ok: ticked,
        detail: ticked ? `ticks: ${health.body?.ticks ?? "?"}` : "no tick reported yet",
      },
    ];
    if (checks.every((c) => c.ok)) return { ok: true, checks };
    if (performance.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 500));
  }
  const journal = await options.exec(
    ["journalctl", "-u", options.unitName, "-n", "20", "--no-pager", "-o", "cat"],
    10_000,
  );
  return { ok: false, checks, journal: journal.stdout.trim() || failureText(journal) };
}
