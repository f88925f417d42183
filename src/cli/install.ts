export async function installCommand(_opts: {
  config?: string;
  dryRun?: boolean;
  root?: string;
}): Promise<number> {
  throw new Error("not implemented yet");
}
export async function uninstallCommand(_opts: {
  config?: string;
  dryRun?: boolean;
  root?: string;
}): Promise<number> {
  throw new Error("not implemented yet");
}
