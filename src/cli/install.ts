import { runInstall, runUninstall } from "../install/installer.js";

/** `install`: write, enable, start and verify the systemd service (src/install/). */
export async function installCommand(opts: {
  config?: string;
  dryRun?: boolean;
  root?: string;
  proxy?: boolean;
}): Promise<number> {
  return runInstall(opts);
}

/** `uninstall`: remove exactly what install created (its manifest says what). */
export async function uninstallCommand(opts: {
  config?: string;
  dryRun?: boolean;
  root?: string;
}): Promise<number> {
  return runUninstall(opts);
}
