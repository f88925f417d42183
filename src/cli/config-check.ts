import { ConfigError, loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { peersFromConfig } from "../fleet/fleet.js";
import { loadWebConfig } from "../server/web-config.js";

export async function configCheckCommand(file: string): Promise<number> {
  try {
    const config = loadConfig(file);
    const problems = referencedFileProblems(config);
    if (problems.length > 0) throw new ConfigError(`${file}:\n${problems.join("\n")}`, problems);
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

/**
 * What `run` reads at start besides the config, read the same way (the web config, the fleet's
 * password files): an ok here must mean `run` starts, as the README chains `config check && restart`.
 */
function referencedFileProblems(config: Config): string[] {
  const problems: string[] = [];
  const collect = (prefix: string, read: () => unknown) => {
    try {
      read();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems.map((problem) => `${prefix}${problem}`));
    }
  };
  const webConfig = config.webConfig;
  if (webConfig) collect(`webConfig: ${webConfig}: `, () => loadWebConfig(webConfig));
  collect("", () => peersFromConfig(config.fleet));
  return problems;
}
