/**
 * What the simulator's stand-ins for `nvidia-smi` and `journalctl` answer, from the simulator's
 * state files: the same answer whether the simulator's tool socket gives it (./tool-server.ts) or
 * the Node stand-in computes it in its own process (./fake-nvidia-smi.ts, ./fake-journalctl.ts).
 */
import { existsSync, readFileSync } from "node:fs";
import { DEFAULT_GPU, type GpuStateFile, readingAt } from "./gpu-state.js";
import { cursorSeq, type JournalQuery, selectEntries } from "./journal-file.js";
import { formatList, formatQueryGpu, parseFormat } from "./nvidia-smi-format.js";

/** A tool's output and exit status, or `hang`: it never answers (killed by whoever called it). */
export type ToolAnswer = { stdout: string; stderr: string; exitCode: number } | { hang: true };

const fail = (stderr: string, exitCode: number): ToolAnswer => ({ stdout: "", stderr, exitCode });
const ok = (stdout: string): ToolAnswer => ({ stdout, stderr: "", exitCode: 0 });

/** `--name=value` or `--name value` (and `-u value`), for any of the names. */
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

function readGpuState(path: string | undefined): GpuStateFile {
  const idle: GpuStateFile = { mode: "ok", busyUntilWall: 0, memoryUsedBytes: 0, gpu: DEFAULT_GPU };
  if (!path) return idle;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as GpuStateFile;
  } catch {
    return idle;
  }
}

/**
 * `nvidia-smi --query-gpu=… --format=csv[,noheader][,nounits]` and `-L` for the GPU in the state
 * file; hangs, vanishes or prints [N/A] like a MIG card as the state's mode says.
 */
export function nvidiaSmiAnswer(
  args: string[],
  statePath: string | undefined,
  nowWall = Date.now(),
): ToolAnswer {
  const state = readGpuState(statePath);
  // Hangs like nvidia-smi on a GPU in trouble, until whoever called it gives up and kills it.
  if (state.mode === "hang") return { hang: true };
  if (state.mode === "missing") return fail("nvidia-smi: command not found\n", 127);
  if (args.includes("-L") || args.includes("--list-gpus")) return ok(formatList(state.gpu));
  const query = option(args, "--query-gpu");
  if (query === undefined)
    return fail("fake nvidia-smi: only --query-gpu=… --format=csv and -L are supported\n", 2);
  const format = parseFormat(option(args, "--format") ?? "");
  if (!format) return fail('"--format" option is required when using "--query-gpu"\n\n', 2);
  const fields = query.split(",").map((field) => field.trim());
  const result = formatQueryGpu(
    fields,
    format,
    state.gpu,
    readingAt(state, nowWall),
    nowWall,
    state.mode === "na",
  );
  // nvidia-smi prints a bad field's complaint on stdout.
  return result.ok ? ok(result.stdout) : { stdout: result.stderr, stderr: "", exitCode: result.exitCode };
}

/** What the journal collector runs: `journalctl -u UNIT -o json --no-pager --since=@EPOCH | --after-cursor=C`. */
export function journalctlAnswer(args: string[], journalPath: string | undefined): ToolAnswer {
  const output = option(args, "-o", "--output") ?? "short";
  if (output !== "json")
    return fail(`journalctl (simulator stand-in): only -o json is supported, got "${output}"\n`, 1);
  if (!journalPath || !existsSync(journalPath))
    return { stdout: "", stderr: "No journal files were found.\n", exitCode: 0 };
  const unit = option(args, "-u", "--unit");
  const since = option(args, "--since", "-S");
  const after = option(args, "--after-cursor");
  let from: JournalQuery["from"] = "start";
  if (after !== undefined) {
    const seq = cursorSeq(after);
    if (seq === undefined) return fail("Failed to seek to cursor: Invalid argument\n", 1);
    from = { afterSeq: seq };
  } else if (since !== undefined) {
    const match = /^@(\d+(?:\.\d+)?)$/.exec(since);
    if (!match) return fail(`Failed to parse timestamp: ${since}\n`, 1);
    from = { sinceEpochUs: Math.round(Number(match[1]) * 1e6) };
  }
  const lines = selectEntries(readFileSync(journalPath, "utf8"), { unit, from });
  return ok(lines.length ? `${lines.join("\n")}\n` : "");
}

/** A stand-in process's end: prints the answer and exits with its status, or never ends. */
export function answerAsProcess(answer: ToolAnswer): void {
  if ("hang" in answer) {
    setInterval(() => undefined, 60_000);
    return;
  }
  process.stdout.write(answer.stdout);
  process.stderr.write(answer.stderr);
  process.exitCode = answer.exitCode;
}
