import { existsSync, realpathSync } from "node:fs";
import { resolve } from "node:path";
import { DEFAULT_CONFIG_PATH, loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { type FetchFn, fetchJson } from "../core/http.js";
import { applyPlan, observe, type VerifyCheck, verifyService } from "./apply.js";
import { defaultLayout, hostPath, type InstallLayout, isUnderHome } from "./layout.js";
import {
  buildInstallSpec,
  describeStep,
  type Manifest,
  type Plan,
  pathsOfManifest,
  pathsToObserve,
  planInstall,
  planUninstall,
} from "./plan.js";
import { type ProxyDropIn, proxyDropIns, withDefaultProxy } from "./proxy.js";
import { defaultExec, type Exec, listenUrl } from "./system.js";

/**
 * install / uninstall as the CLI runs them: resolve the layout and config, observe, plan, then
 * print (dry run) or apply and verify. Output goes through `print`, so tests read it.
 */
export interface InstallerOptions {
  config?: string;
  dryRun?: boolean;
  root?: string;
  /** Overrides of the layout (tests); the node and CLI paths default to the running ones. */
  layout?: Partial<InstallLayout>;
  exec?: Exec;
  fetch?: FetchFn;
  print?: (line: string) => void;
  /** Whether we run as root (live install needs it). */
  isRoot?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Put the stall guard on Ollama's address and move Ollama behind it (proxy.ts). */
  proxy?: boolean;
}

/** The node binary and the CLI file this very process runs: what ExecStart must run. */
export function runningProgramPaths(): { nodePath: string; cliPath: string } {
  const nodePath = realpathSync(process.execPath);
  const script = process.argv[1];
  const cliPath = script ? realpathSync(script) : "";
  return { nodePath, cliPath };
}

function resolveLayout(options: InstallerOptions): InstallLayout {
  const configPath = options.config ? resolve(options.config) : DEFAULT_CONFIG_PATH;
  return defaultLayout({ ...runningProgramPathsSafe(), configPath, ...options.layout });
}

function runningProgramPathsSafe(): Partial<InstallLayout> {
  try {
    return runningProgramPaths();
  } catch {
    return {};
  }
}

function loadInstallConfig(options: InstallerOptions): Config {
  if (options.config) return loadConfig(options.config, options.env);
  if (options.root) {
    const staged = hostPath(options.root, DEFAULT_CONFIG_PATH);
    return loadConfig(existsSync(staged) ? staged : undefined, options.env);
  }
  return loadConfig(undefined, options.env);
}

/** Problems that make an install pointless: said before anything is written. */
export function layoutProblems(layout: InstallLayout): string[] {
  const problems: string[] = [];
  if (!/\.js$/.test(layout.cliPath)) {
    problems.push(
      `run install through the CLI (node …/dist/cli.js install), not ${layout.cliPath || "(none)"}`,
    );
  }
  for (const [what, path] of [
    ["node", layout.nodePath],
    ["the CLI", layout.cliPath],
  ] as const) {
    if (isUnderHome(path)) {
      problems.push(
        `${what} is at ${path}, under a home directory the service cannot see (ProtectHome=yes): ` +
          "install the package system-wide (sudo npm install -g ollama-watchdog) and run install from there",
      );
    }
  }
  return problems;
}

/** Applies the steps, printing ✓/✗ per step as it goes. */
function applyPrinting(
  steps: Parameters<typeof applyPlan>[0],
  exec: Parameters<typeof applyPlan>[1]["exec"],
  root: string | undefined,
  print: (line: string) => void,
) {
  return applyPlan(steps, {
    exec,
    ...(root ? { root } : {}),
    onStep: (o) =>
      print(`${o.ok ? "✓" : "✗"} ${describeStep(o.step, stepView(root))}${o.ok ? "" : `\n  ${o.error}`}`),
  });
}

export async function runInstall(options: InstallerOptions): Promise<number> {
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const exec = options.exec ?? defaultExec;
  const live = !options.root;
  const layout = resolveLayout(options);
  const problems = layoutProblems(layout);
  if (problems.length) {
    for (const p of problems) print(`✗ ${p}`);
    return 1;
  }
  if (live && !options.dryRun && !(options.isRoot ?? process.getuid?.() === 0)) {
    print("✗ install changes the system: run it as root (sudo), or see it first with --dry-run");
    return 1;
  }
  const previous = await installedManifest(layout, exec, options.root);
  const configFileExists =
    options.config !== undefined || existsSync(hostPath(options.root, layout.configPath));
  const loaded = loadInstallConfig(options);
  // Once moved, Ollama stays behind the guard on a later install while the config keeps a proxy.
  const proxy =
    options.proxy === true || (previous?.movedUnits?.length ? loaded.targets.some((t) => t.proxy) : false);
  const config = proxy && !configFileExists ? withDefaultProxy(loaded) : loaded;
  const { dropIns, problems: proxyProblems } = proxy ? proxyDropIns(config) : { dropIns: [], problems: [] };
  if (proxyProblems.length) {
    for (const problem of proxyProblems) print(`✗ ${options.config ?? layout.configPath}: ${problem}`);
    return 2;
  }
  const spec = buildInstallSpec({
    config,
    layout,
    configGiven: options.config !== undefined,
    proxyDropIns: dropIns,
  });
  const observed = await observe({
    paths: [...pathsToObserve(spec), ...(previous?.files ?? [])],
    live,
    user: layout.user,
    unitName: layout.unitName,
    manifestPath: layout.manifestPath,
    exec,
    ...(options.root ? { root: options.root } : {}),
  });
  const plan = planInstall(spec, observed, { live });
  const healthUrl = `${listenUrl(config.listen)}/healthz`;
  const verifyTimeoutMs = 20_000 + 3 * config.interval;

  if (options.dryRun) {
    printPlan(plan, print, options.root, "dry run: install would");
    if (live) print(`then verify: ${layout.unitName} active, ${healthUrl} answers, a first tick ran`);
    for (const d of dropIns) {
      print(`then verify: the stall guard answers on ${d.listen}, ${d.unit} behind it on ${d.ollamaHost}`);
    }
    return 0;
  }

  for (const note of plan.notes) print(`• ${note}`);
  if (plan.steps.length === 0) print("nothing to change");
  const outcomes = await applyPrinting(plan.steps, exec, options.root, print);
  if (outcomes.some((o) => !o.ok)) {
    print("install stopped at the failed step above; fix it and run install again (it resumes)");
    if (live) await printJournal(exec, layout.unitName, print);
    return 1;
  }
  if (!live) {
    print(`staged under ${options.root}; on the target system run: systemd-sysusers, then`);
    print(`  systemctl daemon-reload && systemctl enable --now ${layout.unitName}`);
    for (const unit of spec.movedUnits) print(`  (before that: systemctl restart ${unit}, which moves it)`);
    return 0;
  }
  const verdict = await verifyService({
    unitName: layout.unitName,
    healthUrl,
    timeoutMs: verifyTimeoutMs,
    exec,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  if (verdict.ok) {
    const deadline = performance.now() + verifyTimeoutMs;
    for (const dropIn of dropIns) {
      verdict.checks.push(await verifyGuard(dropIn, deadline, options.fetch));
    }
    verdict.ok = verdict.checks.every((c) => c.ok);
  }
  for (const check of verdict.checks) print(`${check.ok ? "✓" : "✗"} ${check.name}: ${check.detail}`);
  if (!verdict.ok) {
    print(`✗ ${layout.unitName} is not running as it should. Its journal:`);
    if (verdict.journal) print(verdict.journal.replace(/^/gm, "  "));
    return 1;
  }
  print(
    `installed and verified: ${layout.unitName} runs, at boot too; check it any time with: ollama-watchdog doctor`,
  );
  return 0;
}

export async function runUninstall(options: InstallerOptions): Promise<number> {
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const exec = options.exec ?? defaultExec;
  const live = !options.root;
  const layout = resolveLayout(options);
  if (live && !options.dryRun && !(options.isRoot ?? process.getuid?.() === 0)) {
    print("✗ uninstall changes the system: run it as root (sudo), or see it first with --dry-run");
    return 1;
  }
  const manifest: Manifest | undefined = await installedManifest(layout, exec, options.root);
  const observed = await observe({
    paths: manifest ? pathsOfManifest(manifest) : [],
    live,
    user: manifest?.user ?? layout.user,
    unitName: manifest?.unit ?? layout.unitName,
    manifestPath: layout.manifestPath,
    exec,
    ...(options.root ? { root: options.root } : {}),
  });
  const plan = planUninstall(manifest, observed, { live, manifestPath: layout.manifestPath });
  if (options.dryRun) {
    printPlan(plan, print, options.root, "dry run: uninstall would");
    return 0;
  }
  for (const note of plan.notes) print(`• ${note}`);
  if (plan.steps.length === 0) {
    print("nothing to remove");
    return 0;
  }
  const outcomes = await applyPrinting(plan.steps, exec, options.root, print);
  if (outcomes.some((o) => !o.ok)) {
    print("uninstall stopped at the failed step above; fix it and run uninstall again");
    return 1;
  }
  print("uninstalled: everything install created is gone");
  return 0;
}

/** Ollama answers through the stall guard on its old address (/api/version, polled to the deadline). */
async function verifyGuard(dropIn: ProxyDropIn, deadline: number, fetch?: FetchFn): Promise<VerifyCheck> {
  const url = `${listenUrl(dropIn.listen)}/api/version`;
  for (;;) {
    const answer = await fetchJson<{ version?: string }>(url, {
      timeoutMs: 3000,
      ...(fetch ? { fetch } : {}),
    });
    const ok = answer.ok && typeof answer.body?.version === "string";
    if (ok || performance.now() > deadline) {
      return {
        name: "Ollama answers through the stall guard",
        ok,
        detail: ok
          ? `${url} → Ollama ${answer.body?.version} (${dropIn.unit} now on ${dropIn.ollamaHost})`
          : `${url}: ${answer.error ?? `status ${answer.status}`}`,
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** What the last install recorded (its manifest), read without probing the live service. */
async function installedManifest(
  layout: InstallLayout,
  exec: Exec,
  root: string | undefined,
): Promise<Manifest | undefined> {
  const observed = await observe({
    paths: [],
    live: false,
    user: layout.user,
    unitName: layout.unitName,
    manifestPath: layout.manifestPath,
    exec,
    ...(root ? { root } : {}),
  });
  return observed.manifest;
}

function stepView(root: string | undefined): { withContent: boolean; root?: string } {
  return root ? { withContent: false, root } : { withContent: false };
}

function printPlan(plan: Plan, print: (line: string) => void, root: string | undefined, lead: string): void {
  for (const note of plan.notes) print(`• ${note}`);
  if (plan.steps.length === 0) {
    print(`${lead} change nothing: nothing to change`);
    return;
  }
  print(`${lead}:`);
  for (const step of plan.steps) {
    print(`- ${describeStep(step, root ? { withContent: true, root } : { withContent: true })}`);
  }
}

async function printJournal(exec: Exec, unit: string, print: (line: string) => void): Promise<void> {
  const journal = await exec(["journalctl", "-u", unit, "-n", "20", "--no-pager", "-o", "cat"], 10_000);
  if (journal.stdout.trim()) print(journal.stdout.trim().replace(/^/gm, "  "));
}
