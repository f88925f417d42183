/**
 * A `journalctl` stand-in for the simulator's server log (file in FAKE_JOURNALCTL_FILE, set by the
 * wrapper the simulator writes). Answers what the journal collector runs:
 * `journalctl -u UNIT -o json --no-pager --since=@EPOCH | --after-cursor=CURSOR`.
 */
import { existsSync, readFileSync } from "node:fs";
import { cursorSeq, JOURNAL_FILE_ENV, type JournalQuery, selectEntries } from "./journal-file.js";

/** `--name=value` or `--name value` (and `-u value`). */
function option(args: string[], ...names: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    for (const name of names) {
      if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
      if (arg === name) return args[i + 1];
    }
  }
  return undefined;
}

function main(args: string[]): number {
  const output = option(args, "-o", "--output") ?? "short";
  if (output !== "json") {
    process.stderr.write(`journalctl (simulator stand-in): only -o json is supported, got "${output}"\n`);
    return 1;
  }
  const path = process.env[JOURNAL_FILE_ENV];
  if (!path || !existsSync(path)) {
    process.stderr.write("No journal files were found.\n");
    return 0;
  }
  const unit = option(args, "-u", "--unit");
  const since = option(args, "--since", "-S");
  const after = option(args, "--after-cursor");
  let from: JournalQuery["from"] = "start";
  if (after !== undefined) {
    const seq = cursorSeq(after);
    if (seq === undefined) {
      process.stderr.write("Failed to seek to cursor: Invalid argument\n");
      return 1;
    }
    from = { afterSeq: seq };
  } else if (since !== undefined) {
    const match = /^@(\d+(?:\.\d+)?)$/.exec(since);
    if (!match) {
      process.stderr.write(`Failed to parse timestamp: ${since}\n`);
      return 1;
    }
    from = { sinceEpochUs: Math.round(Number(match[1]) * 1e6) };
  }
  const lines = selectEntries(readFileSync(path, "utf8"), { unit, from });
  if (lines.length) process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
