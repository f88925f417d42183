/**
 * A `systemctl` stand-in for the one unit a simulator's supervisor runs (./supervisor.ts; the
 * wrapper it writes sets FAKE_SYSTEMCTL_URL and FAKE_SYSTEMCTL_UNIT). Answers what the watchdog's
 * systemd restart runs (src/remediation/actions/restart-systemd.ts), with systemctl's wording and
 * exit codes:
 * - `systemctl restart UNIT` — blocks until the job is done: 0, 1 when the job failed, 5 for an
 *   unknown unit;
 * - `systemctl show UNIT -p A,B | --property=A,B [--value]` — `Name=value` lines, Service
 *   properties before Unit ones as systemd prints them; an unknown unit is `not-found`, `inactive`.
 */

import { unitName } from "./journal-file.js";
import { SYSTEMCTL_UNIT_ENV, SYSTEMCTL_URL_ENV, type UnitProperties } from "./supervisor.js";

/** systemctl waits for a restart job without a limit; the stand-in gives up after this. */
const JOB_DEADLINE_MS = 300_000;
const SHOW_DEADLINE_MS = 25_000;

/** Exit codes of systemctl (LSB): generic failure, and "no such unit". */
const EXIT_FAILURE = 1;
const EXIT_UNIT_NOT_FOUND = 5;

interface Invocation {
  verb: string | undefined;
  units: string[];
  properties: string[];
  valueOnly: boolean;
}

/** Options that take a value (`-p X` as well as `-p=X`, `--property=X`). */
const WITH_VALUE = new Set([
  "-p",
  "--property",
  "-t",
  "--type",
  "--state",
  "-H",
  "--host",
  "-M",
  "--machine",
]);

function parseInvocation(args: string[]): Invocation {
  const invocation: Invocation = { verb: undefined, units: [], properties: [], valueOnly: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    let name = arg;
    let value: string | undefined;
    if (arg.startsWith("--") && arg.includes("=")) {
      name = arg.slice(0, arg.indexOf("="));
      value = arg.slice(arg.indexOf("=") + 1);
    } else if (/^-p./.test(arg)) {
      name = "-p";
      value = arg.slice(2).replace(/^=/, "");
    }
    if (name.startsWith("-")) {
      if (value === undefined && WITH_VALUE.has(name)) value = args[++i];
      if (name === "-p" || name === "--property") invocation.properties.push(...(value ?? "").split(","));
      if (name === "--value") invocation.valueOnly = true;
      continue;
    }
    if (invocation.verb === undefined) invocation.verb = arg;
    else invocation.units.push(arg);
  }
  invocation.properties = invocation.properties.filter(Boolean);
  return invocation;
}

/** The order systemd prints them in: the Service interface's properties, then the Unit's. */
const PROPERTY_ORDER = ["Result", "Id", "LoadState", "ActiveState", "SubState"] as const;

function formatShow(
  unit: string,
  known: UnitProperties | undefined,
  wanted: string[],
  valueOnly: boolean,
): string {
  const all: Record<(typeof PROPERTY_ORDER)[number], string> = known
    ? { Id: unit, LoadState: "loaded", ...known }
    : { Id: unit, LoadState: "not-found", ActiveState: "inactive", SubState: "dead", Result: "success" };
  const names = PROPERTY_ORDER.filter((name) => wanted.length === 0 || wanted.includes(name));
  return names.map((name) => (valueOnly ? `${all[name]}\n` : `${name}=${all[name]}\n`)).join("");
}

async function supervisorUnit(base: string): Promise<{ unit: string; properties: UnitProperties }> {
  const response = await fetch(`${base}/unit`, { signal: AbortSignal.timeout(SHOW_DEADLINE_MS) });
  if (!response.ok) throw new Error(`supervisor answered ${response.status}`);
  return (await response.json()) as { unit: string; properties: UnitProperties };
}

async function main(args: string[]): Promise<number> {
  const base = process.env[SYSTEMCTL_URL_ENV];
  const managed = process.env[SYSTEMCTL_UNIT_ENV];
  if (!base || !managed) {
    process.stderr.write("System has not been booted with systemd as init system (PID 1). Can't operate.\n");
    return EXIT_FAILURE;
  }
  const { verb, units, properties, valueOnly } = parseInvocation(args);
  const names = units.map(unitName);
  try {
    switch (verb) {
      case "restart": {
        if (names.length === 0) {
          process.stderr.write("Too few arguments.\n");
          return EXIT_FAILURE;
        }
        for (const unit of names) {
          if (unit !== managed) {
            process.stderr.write(`Failed to restart ${unit}: Unit ${unit} not found.\n`);
            return EXIT_UNIT_NOT_FOUND;
          }
          const response = await fetch(`${base}/restart`, {
            method: "POST",
            signal: AbortSignal.timeout(JOB_DEADLINE_MS),
          });
          await response.arrayBuffer();
          if (!response.ok) {
            process.stderr.write(
              `Job for ${unit} failed because the control process exited with error code.\n` +
                `See "systemctl status ${unit}" and "journalctl -xeu ${unit}" for details.\n`,
            );
            return EXIT_FAILURE;
          }
        }
        return 0;
      }
      case "show": {
        if (names.length === 0) {
          process.stderr.write("systemctl (simulator stand-in): show needs a unit\n");
          return EXIT_FAILURE;
        }
        const answer = await supervisorUnit(base);
        const blocks = names.map((unit) =>
          formatShow(unit, unit === answer.unit ? answer.properties : undefined, properties, valueOnly),
        );
        process.stdout.write(blocks.join("\n"));
        return 0;
      }
      default:
        process.stderr.write(
          verb === undefined
            ? "systemctl (simulator stand-in): a verb is needed (restart, show)\n"
            : `Unknown command verb '${verb}'.\n`,
        );
        return EXIT_FAILURE;
    }
  } catch (error) {
    // What systemctl says when it cannot reach the manager.
    process.stderr.write(`Failed to connect to bus: ${(error as Error).message}\n`);
    return EXIT_FAILURE;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
