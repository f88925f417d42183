import { createHash } from "node:crypto";
import { basename, dirname } from "node:path";
import type { Config } from "../config/schema.js";
import { VERSION } from "../core/version.js";
import { renderDefaultConfig, renderPolkitRule, renderSysusers } from "./files.js";
import type { InstallLayout } from "./layout.js";
import { DROP_IN_NAME, type ProxyDropIn } from "./proxy.js";
import { renderUnit, restartUnitsOf, unitInputsFor } from "./unit.js";

/**
 * The functional core of install/uninstall: from what should be (the spec) and what is (the
 * observation), a list of steps. Pure: no I/O, no clock. apply.ts carries the steps out; the
 * dry run prints them. An empty plan means "nothing to change".
 */

export interface DesiredFile {
  path: string;
  content: string;
  mode: number;
  /** Group that must be able to read it (the service's group), when not root's. */
  group?: string;
  /** Written only when absent; an existing file is the user's and is kept (the config). */
  keepExisting?: boolean;
  purpose: string;
}

export interface DesiredDir {
  path: string;
  mode: number;
  owner: string;
  purpose: string;
}

export interface InstallSpec {
  layout: InstallLayout;
  stateDir: string;
  /** The user's own config was given (--config): install never writes a config then. */
  configGiven: boolean;
  /** In write order. */
  files: DesiredFile[];
  stateDirSpec: DesiredDir;
  /** install --proxy: the Ollama units moved behind the stall guard by a drop-in (proxy.ts). */
  movedUnits: string[];
}

/** Records what install created (DesiredFile paths are absolute paths on the target system). */
export interface Manifest {
  format: 1;
  /** The package version that last installed. */
  version: string;
  unit: string;
  user: string;
  userCreated: boolean;
  configPath: string;
  configCreated: boolean;
  /** sha256 of the config as written, so uninstall removes it only when nobody edited it. */
  configSha256?: string;
  /** Directories install had to create (parents of its files, the state dir's), deepest first. */
  createdDirs: string[];
  stateDir: string;
  stateDirCreated: boolean;
  /** Files install owns outright (unit, polkit rule, sysusers declaration, proxy drop-ins). */
  files: string[];
  /** install --proxy: Ollama units moved by a drop-in; uninstall restarts them on their own address. */
  movedUnits?: string[];
}

export interface ObservedPath {
  exists: boolean;
  content?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface Observed {
  /** By absolute target path. Missing entries mean "absent". */
  paths: Record<string, ObservedPath>;
  /** uid/gid of the service user, when it exists. */
  user?: { uid: number; gid: number };
  /** undefined under --root (no systemd to ask). */
  unit?: { loaded: boolean; enabled: boolean; active: boolean };
  manifest?: Manifest;
}

export type Step =
  | { kind: "write-file"; path: string; content: string; mode: number; group?: string; why: string }
  | { kind: "set-access"; path: string; mode: number; group?: string; why: string }
  | { kind: "make-dir"; path: string; mode: number; owner: string; why: string }
  | { kind: "run"; argv: string[]; why: string; mayFail?: boolean }
  | { kind: "remove-file"; path: string; why: string }
  | { kind: "remove-dir"; path: string; recursive: boolean; why: string }
  | { kind: "remove-user"; user: string; why: string };

export interface Plan {
  steps: Step[];
  /** Things left as they are on purpose, said to the user. */
  notes: string[];
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export function buildInstallSpec(options: {
  config: Config;
  layout: InstallLayout;
  configGiven: boolean;
  proxyDropIns?: ProxyDropIn[];
}): InstallSpec {
  const { config, layout } = options;
  const user = layout.user;
  const files: DesiredFile[] = [
    {
      path: layout.sysusersPath,
      content: renderSysusers(user, config.stateDir),
      mode: 0o644,
      purpose: "the service user (systemd-sysusers)",
    },
  ];
  if (!options.configGiven) {
    files.push({
      path: layout.configPath,
      content: renderDefaultConfig(config),
      mode: 0o640,
      group: user,
      keepExisting: true,
      purpose: "the default config (only when none exists)",
    });
  }
  files.push(
    {
      path: layout.unitPath,
      content: renderUnit(unitInputsFor(config, layout)),
      mode: 0o644,
      purpose: "the systemd unit",
    },
    {
      path: layout.polkitRulePath,
      content: renderPolkitRule(user, restartUnitsOf(config)),
      mode: 0o644,
      purpose: "the polkit rule: restart of the Ollama unit, nothing else",
    },
  );
  const dropIns = options.proxyDropIns ?? [];
  for (const dropIn of dropIns) {
    files.push({
      path: dropIn.path,
      content: dropIn.content,
      mode: 0o644,
      purpose: `moves ${dropIn.unit} to ${dropIn.ollamaHost}: the stall guard takes ${dropIn.listen}`,
    });
  }
  return {
    layout,
    stateDir: config.stateDir,
    configGiven: options.configGiven,
    files,
    stateDirSpec: {
      path: config.stateDir,
      mode: 0o750,
      owner: user,
      purpose: "the state dir (ledger, incidents)",
    },
    movedUnits: dropIns.map((d) => d.unit),
  };
}

const modeOf = (mode: number | undefined) => (mode === undefined ? undefined : mode & 0o7777);

/** The manifest after this install: what existed before a first install is never "created". */
export function nextManifest(spec: InstallSpec, observed: Observed): Manifest {
  const previous = observed.manifest;
  const seen = (path: string) => observed.paths[path]?.exists === true;
  const config = spec.files.find((f) => f.path === spec.layout.configPath);
  const configCreated = previous?.configCreated ?? (config !== undefined && !seen(config.path));
  const manifest: Manifest = {
    format: 1,
    version: VERSION,
    unit: spec.layout.unitName,
    user: spec.layout.user,
    userCreated: previous?.userCreated ?? observed.user === undefined,
    configPath: spec.layout.configPath,
    configCreated,
    // A later install may create more (install --proxy: the drop-in's directory).
    createdDirs: deepestFirst([...(previous?.createdDirs ?? []), ...missingAncestors(spec, observed)]),
    stateDir: spec.stateDir,
    stateDirCreated: previous?.stateDirCreated ?? !seen(spec.stateDir),
    files: spec.files.filter((f) => !f.keepExisting).map((f) => f.path),
  };
  if (spec.movedUnits.length) manifest.movedUnits = spec.movedUnits;
  if (configCreated && config) {
    manifest.configSha256 = previous?.configSha256 ?? sha256(config.content);
  }
  return manifest;
}

/** Ancestors of what install writes that do not exist yet: install creates them. Deepest first. */
export function missingAncestors(spec: InstallSpec, observed: Observed): string[] {
  const missing = new Set<string>();
  for (const path of ownedPaths(spec)) {
    for (let dir = dirname(path); dir !== "/" && dir !== "."; dir = dirname(dir)) {
      if (observed.paths[dir]?.exists) break;
      missing.add(dir);
    }
  }
  return deepestFirst([...missing]);
}

function deepestFirst(dirs: string[]): string[] {
  return [...new Set(dirs)].sort((a, b) => b.split("/").length - a.split("/").length || a.localeCompare(b));
}

function ownedPaths(spec: InstallSpec): string[] {
  return [...spec.files.map((f) => f.path), spec.stateDir, spec.layout.manifestPath];
}

export function renderManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/**
 * Install: only the steps that change something. `live` adds the user creation and systemctl
 * steps (without --root).
 */
export function planInstall(spec: InstallSpec, observed: Observed, options: { live: boolean }): Plan {
  const steps: Step[] = [];
  const notes: string[] = [];
  const { layout } = spec;
  const unitName = layout.unitName;
  let unitChanged = false;
  let restartNeeded = false;
  const dropInPaths = new Set(
    spec.files.filter((f) => f.path.endsWith(`.d/${DROP_IN_NAME}`)).map((f) => f.path),
  );
  let ollamaMoved = false;
  // Moved by an earlier install --proxy, not by this one: Ollama goes back to its own address.
  const movedBack = (observed.manifest?.files ?? []).filter(
    (path) => path.endsWith(`.d/${DROP_IN_NAME}`) && !dropInPaths.has(path) && observed.paths[path]?.exists,
  );
  for (const path of movedBack) {
    steps.push({ kind: "remove-file", path, why: "the stall guard no longer takes Ollama's address" });
  }

  for (const file of spec.files) {
    const current = observed.paths[file.path];
    if (current?.exists && file.keepExisting) {
      notes.push(`${file.path} exists: kept as it is`);
      continue;
    }
    const same = current?.exists && current.content === file.content;
    if (!same) {
      steps.push(writeStep(file, current?.exists ? "update" : "create"));
      if (file.path === layout.unitPath) unitChanged = true;
      if (file.path === layout.unitPath || file.path === layout.configPath) restartNeeded = true;
      if (dropInPaths.has(file.path)) ollamaMoved = true;
    } else if (modeOf(current.mode) !== file.mode) {
      steps.push({ kind: "set-access", path: file.path, mode: file.mode, why: `${file.purpose}: mode` });
    }
    if (file.path === layout.sysusersPath && options.live && !observed.user) {
      steps.push({
        kind: "run",
        argv: ["systemd-sysusers", layout.sysusersPath],
        why: `create the system user ${layout.user}`,
      });
    }
  }

  const state = observed.paths[spec.stateDir];
  const user = observed.user;
  const stateOk =
    state?.exists &&
    modeOf(state.mode) === spec.stateDirSpec.mode &&
    (!options.live || (user !== undefined && state.uid === user.uid && state.gid === user.gid));
  if (!stateOk) {
    const s = spec.stateDirSpec;
    steps.push({ kind: "make-dir", path: s.path, mode: s.mode, owner: s.owner, why: s.purpose });
  }

  const manifest = renderManifest(nextManifest(spec, observed));
  if (observed.paths[layout.manifestPath]?.content !== manifest) {
    steps.push({
      kind: "write-file",
      path: layout.manifestPath,
      content: manifest,
      mode: 0o644,
      why: "what install created, for uninstall",
    });
  }

  if (options.live) {
    const unit = observed.unit;
    if (unitChanged || ollamaMoved || movedBack.length || !unit?.loaded) {
      steps.push({ kind: "run", argv: ["systemctl", "daemon-reload"], why: "load the new unit" });
    }
    if (ollamaMoved || movedBack.length) {
      // Before the watchdog (re)starts: Ollama must have left the address its stall guard takes.
      const units = new Set([...spec.movedUnits, ...movedBack.map(unitOfDropIn)]);
      for (const moved of units) {
        steps.push({
          kind: "run",
          argv: ["systemctl", "try-restart", moved],
          why: `restart ${moved} on its ${spec.movedUnits.includes(moved) ? "new" : "own"} address (if it runs)`,
        });
      }
      restartNeeded = true;
    }
    if (!unit?.enabled) {
      steps.push({ kind: "run", argv: ["systemctl", "enable", unitName], why: "start it at boot" });
    }
    if (!unit?.active) {
      steps.push({ kind: "run", argv: ["systemctl", "start", unitName], why: "start it now" });
    } else if (restartNeeded) {
      steps.push({ kind: "run", argv: ["systemctl", "restart", unitName], why: "run the new unit/config" });
    }
  }
  return { steps, notes };
}

/** "/etc/systemd/system/ollama.service.d/zz-….conf" → "ollama.service". */
function unitOfDropIn(path: string): string {
  return basename(dirname(path)).replace(/\.d$/, "");
}

function writeStep(file: DesiredFile, what: "create" | "update"): Step {
  const step: Step = {
    kind: "write-file",
    path: file.path,
    content: file.content,
    mode: file.mode,
    why: `${what} ${file.purpose}`,
  };
  if (file.group) step.group = file.group;
  return step;
}

/** Uninstall: exactly what the manifest says install created. */
export function planUninstall(
  manifest: Manifest | undefined,
  observed: Observed,
  options: { live: boolean; manifestPath: string },
): Plan {
  const steps: Step[] = [];
  const notes: string[] = [];
  if (!manifest) {
    notes.push(`no install manifest at ${options.manifestPath}: nothing that install created is here`);
    return { steps, notes };
  }
  const exists = (path: string) => observed.paths[path]?.exists === true;
  const unit = manifest.unit;
  if (options.live && (observed.unit?.enabled || observed.unit?.active)) {
    steps.push({
      kind: "run",
      argv: ["systemctl", "disable", "--now", unit],
      why: "stop it and remove it from boot",
    });
  }
  if (options.live && observed.unit?.loaded) {
    steps.push({
      kind: "run",
      argv: ["systemctl", "reset-failed", unit],
      why: "forget its failed state, if any",
      mayFail: true,
    });
  }
  for (const file of manifest.files) {
    if (exists(file)) steps.push({ kind: "remove-file", path: file, why: "created by install" });
  }
  const movedBack = (manifest.movedUnits ?? []).filter((unit) =>
    manifest.files.some((file) => file.endsWith(`/${unit}.d/${DROP_IN_NAME}`) && exists(file)),
  );
  if (options.live && (observed.unit?.loaded || movedBack.length)) {
    steps.push({ kind: "run", argv: ["systemctl", "daemon-reload"], why: "forget the unit" });
  }
  for (const unit of options.live ? movedBack : []) {
    steps.push({
      kind: "run",
      argv: ["systemctl", "try-restart", unit],
      why: `restart ${unit} on its own address again (if it runs)`,
    });
  }
  if (manifest.configCreated && exists(manifest.configPath)) {
    const current = observed.paths[manifest.configPath]?.content;
    if (current !== undefined && manifest.configSha256 === sha256(current)) {
      steps.push({ kind: "remove-file", path: manifest.configPath, why: "the default config install wrote" });
    } else {
      notes.push(`${manifest.configPath} was edited since install: kept (remove it yourself if unwanted)`);
    }
  }
  if (manifest.stateDirCreated && exists(manifest.stateDir)) {
    steps.push({
      kind: "remove-dir",
      path: manifest.stateDir,
      recursive: true,
      why: "the state dir install created (ledger, incidents)",
    });
  }
  if (options.live && manifest.userCreated && observed.user) {
    steps.push({ kind: "remove-user", user: manifest.user, why: "the system user install created" });
  }
  steps.push({ kind: "remove-file", path: options.manifestPath, why: "the install manifest" });
  for (const dir of manifest.createdDirs ?? []) {
    steps.push({
      kind: "remove-dir",
      path: dir,
      recursive: false,
      why: "a directory install created (kept if something else is in it now)",
    });
  }
  return { steps, notes };
}

/** Every path the observer must look at for a plan: what install owns and all its ancestors. */
export function pathsToObserve(spec: InstallSpec): string[] {
  const paths = new Set<string>([...ownedPaths(spec), spec.layout.configPath]);
  for (const path of [...paths]) {
    for (let dir = dirname(path); dir !== "/" && dir !== "."; dir = dirname(dir)) paths.add(dir);
  }
  return [...paths];
}

export function pathsOfManifest(manifest: Manifest): string[] {
  return [...manifest.files, manifest.configPath, manifest.stateDir, ...(manifest.createdDirs ?? [])];
}

/** For --dry-run and the report: every step in words, file contents included when asked. */
export function describeStep(step: Step, options: { withContent: boolean; root?: string }): string {
  const where = (path: string) => (options.root ? `${options.root}${path}` : path);
  const octal = (mode: number) => `0${mode.toString(8)}`;
  switch (step.kind) {
    case "write-file": {
      const owner = step.group ? ` root:${step.group}` : "";
      const head = `write ${where(step.path)} (${octal(step.mode)}${owner}) — ${step.why}`;
      if (!options.withContent) return head;
      const body = step.content.endsWith("\n") ? step.content : `${step.content}\n`;
      return `${head}\n${indent(body)}`;
    }
    case "set-access":
      return `chmod ${octal(step.mode)}${step.group ? `, chgrp ${step.group}` : ""} ${where(step.path)} — ${step.why}`;
    case "make-dir":
      return `mkdir ${where(step.path)} (${octal(step.mode)} ${step.owner}:${step.owner}) — ${step.why}`;
    case "run":
      return `run ${step.argv.join(" ")} — ${step.why}`;
    case "remove-file":
      return `remove ${where(step.path)} — ${step.why}`;
    case "remove-dir":
      return `remove ${step.recursive ? "directory tree" : "empty directory"} ${where(step.path)} — ${step.why}`;
    case "remove-user":
      return `run userdel ${step.user} (and its group) — ${step.why}`;
  }
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line, i, all) => (i === all.length - 1 && line === "" ? "" : `    | ${line}`))
    .join("\n")
    .replace(/\n$/, "");
}
