import { Command, CommanderError, Option } from "commander";
import { ConfigError } from "../config/load.js";
import { VERSION } from "../core/version.js";

/**
 * The command line (DESIGN.md §5). Each command lives in src/cli/<name>.ts and returns its exit
 * code: 0 ok, 1 check failed / runtime failure, 2 usage or configuration error.
 */
type Main = () => Promise<number>;

async function exitWith(main: Main): Promise<void> {
  try {
    process.exitCode = await main();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`config error: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`error: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  }
}

const configOption = () =>
  new Option(
    "-c, --config <file>",
    "config file (default /etc/ollama-watchdog/config.yaml, else built-in defaults)",
  );

export function buildProgram(): Command {
  const program = new Command("ollama-watchdog")
    .description("Detects a frozen Ollama server and heals it safely.")
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError();

  program
    .command("run")
    .description("run the watchdog daemon (JSON logs on stdout; SIGTERM/SIGINT stop it)")
    .addOption(configOption())
    .option("--web.config.file <file>", "TLS and basic auth for the HTTP endpoints (overrides webConfig:)")
    .action((opts) => exitWith(async () => (await import("./run.js")).runCommand(opts)));

  program
    .command("status")
    .description("one-glance report of Ollama and the watchdog")
    .addOption(configOption())
    .option("--json", "machine-readable output")
    .option(
      "--url <url>",
      "Ollama URL (default: the first target of the config); given twice or more: the watchdogs of a fleet, one line each",
      (url: string, previous: string[] = []) => [...previous, url],
    )
    .action((opts) => exitWith(async () => (await import("./status.js")).statusCommand(opts)));

  program
    .command("doctor")
    .description("check the installation end to end; exit 1 if any check fails")
    .addOption(configOption())
    .option("--root <dir>", "check an installation staged under this root")
    .action((opts) => exitWith(async () => (await import("./doctor.js")).doctorCommand(opts)));

  program
    .command("install")
    .description("write, enable, start and verify the systemd service")
    .addOption(configOption())
    .option("--dry-run", "print every file and command, change nothing")
    .option("--root <dir>", "write files under this staging root and run no systemctl")
    .option("--proxy", "put the stall guard on Ollama's address and move Ollama behind it (docs/proxy.md)")
    .action((opts) => exitWith(async () => (await import("./install.js")).installCommand(opts)));

  program
    .command("uninstall")
    .description("remove exactly what install created")
    .addOption(configOption())
    .option("--dry-run", "print every file and command, change nothing")
    .option("--root <dir>", "act under this staging root and run no systemctl")
    .action((opts) => exitWith(async () => (await import("./install.js")).uninstallCommand(opts)));

  program
    .command("simulate")
    .description("run the fault-injecting Ollama simulator")
    .option("--port <n>", "port to listen on", "11434")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--fault <name>", "inject this fault at start (see --list-faults)")
    .option("--list-faults", "list the faults and exit")
    .option("--state-dir <dir>", "where the simulator keeps its fake nvidia-smi and GPU state")
    .option(
      "--ollama-version <v>",
      "the Ollama release to reproduce (a profile id or a release; see --list-profiles)",
    )
    .option("--list-profiles", "list the Ollama versions the simulator reproduces and exit")
    .action((opts) => exitWith(async () => (await import("./simulate.js")).simulateCommand(opts)));

  program
    .command("drill")
    .description("freeze a live Ollama's runner (SIGSTOP), time detection and recovery, print the report")
    .addOption(configOption())
    .option("--target <name>", "which target (default: the first)")
    .option("--timeout <duration>", "give up after this long", "10m")
    .option("--json", "machine-readable output")
    .action((opts) => exitWith(async () => (await import("./drill.js")).drillCommand(opts)));

  const incidents = program.command("incidents").description("incident history and reports");
  incidents
    .command("list", { isDefault: true })
    .addOption(configOption())
    .option("--json", "machine-readable output")
    .action((opts) => exitWith(async () => (await import("./incidents.js")).incidentsListCommand(opts)));
  incidents
    .command("show <id>")
    .addOption(configOption())
    .option("--markdown", "the recovery report in Markdown (default)")
    .option("--json", "the incident with its evidence as JSON")
    .action((id, opts) =>
      exitWith(async () => (await import("./incidents.js")).incidentsShowCommand(id, opts)),
    );

  const config = program.command("config").description("configuration tools");
  config
    .command("check <file>")
    .description("validate a config file; exit 2 naming each bad key")
    .action((file) => exitWith(async () => (await import("./config-check.js")).configCheckCommand(file)));

  const notify = program.command("notify").description("notifications (notify: in the config)");
  notify
    .command("test")
    .description("send a test message to every receiver and report each result; exit 1 if any failed")
    .addOption(configOption())
    .action((opts) => exitWith(async () => (await import("./notify.js")).notifyTestCommand(opts)));

  program
    .command("demo")
    .description("simulator + watchdog; a freeze is injected after ~20 s and healed, the story printed live")
    .option("--freeze-after <duration>", "when to inject the freeze", "20s")
    .option("--port <n>", "watchdog listen port", "11464")
    .option("--once", "exit when the story is told (healed), instead of running until Ctrl-C")
    .action((opts) => exitWith(async () => (await import("./demo.js")).demoCommand(opts)));

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    throw error;
  }
}
