import { isAbsolute, join } from "node:path";
import { DEFAULT_CONFIG_PATH } from "../config/load.js";

/**
 * Where an installation lives: every path and name `install` writes, `uninstall` removes and
 * `doctor` checks. One value, passed around, so the three always agree.
 */
export interface InstallLayout {
  /** The systemd unit's name. */
  unitName: string;
  unitPath: string;
  configPath: string;
  /** Records what install created, so uninstall removes exactly that. */
  manifestPath: string;
  polkitRulePath: string;
  /** systemd-sysusers(8) declaration of the service user. */
  sysusersPath: string;
  /** The dedicated system user (and group) the service runs as. */
  user: string;
  /** Absolute path of the node binary ExecStart runs. */
  nodePath: string;
  /** Absolute path of the built CLI (dist/cli.js). */
  cliPath: string;
}

export const SERVICE_USER = "ollama-watchdog";
export const UNIT_NAME = "ollama-watchdog.service";

/** The documented default paths: `npm install -g` with Debian's node (prefix /usr). */
export const DEFAULT_NODE_PATH = "/usr/bin/node";
export const DEFAULT_CLI_PATH = "/usr/lib/node_modules/ollama-watchdog/dist/cli.js";

export function defaultLayout(overrides: Partial<InstallLayout> = {}): InstallLayout {
  return {
    unitName: UNIT_NAME,
    unitPath: `/etc/systemd/system/${UNIT_NAME}`,
    configPath: DEFAULT_CONFIG_PATH,
    manifestPath: "/etc/ollama-watchdog/install-manifest.json",
    polkitRulePath: "/etc/polkit-1/rules.d/50-ollama-watchdog.rules",
    sysusersPath: "/etc/sysusers.d/ollama-watchdog.conf",
    user: SERVICE_USER,
    nodePath: DEFAULT_NODE_PATH,
    cliPath: DEFAULT_CLI_PATH,
    ...overrides,
  };
}

/** A path of the target system as seen from here: under the staging root when there is one. */
export function hostPath(root: string | undefined, path: string): string {
  if (!root) return path;
  if (!isAbsolute(path)) throw new Error(`expected an absolute path, got ${path}`);
  return join(root, path);
}

/** Directories systemd's ProtectHome= hides from the service: ExecStart must not live there. */
export const HOME_DIRECTORIES = ["/home", "/root", "/run/user"];

export function isUnderHome(path: string): boolean {
  return HOME_DIRECTORIES.some((dir) => path === dir || path.startsWith(`${dir}/`));
}
