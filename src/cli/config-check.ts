import { ConfigError, loadConfig } from "../config/load.js";

export async function configCheckCommand(file: string): Promise<number> {
  try {
    const config = loadConfig(file);
    process.stdout.write(
      `${file}: ok (${config.targets.length} target${config.targets.length === 1 ? "" : "s"}: ${config.targets.map((t) => t.name).join(", ")})\n`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
}
