/**
 * A fake `nvidia-smi` driven by a simulator's GPU state file (path in FAKE_NVIDIA_SMI_STATE, set
 * by the wrapper the simulator writes). Answers `--query-gpu=… --format=csv[,noheader][,nounits]`
 * and `-L`; can hang, vanish or print [N/A] like a MIG card.
 */
import { readFileSync } from "node:fs";
import { DEFAULT_GPU, GPU_STATE_ENV, type GpuStateFile, readingAt } from "./gpu-state.js";
import { formatList, formatQueryGpu, parseFormat } from "./nvidia-smi-format.js";

function readState(): GpuStateFile {
  const path = process.env[GPU_STATE_ENV];
  const idle: GpuStateFile = { mode: "ok", busyUntilWall: 0, memoryUsedBytes: 0, gpu: DEFAULT_GPU };
  if (!path) return idle;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as GpuStateFile;
  } catch {
    return idle;
  }
}

/** `--name=value` or `--name value`. */
function option(args: string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
    if (arg === name) return args[i + 1];
  }
  return undefined;
}

function main(args: string[]): number {
  const state = readState();
  if (state.mode === "hang") {
    // Hangs like nvidia-smi on a GPU in trouble, until whoever called it gives up and kills it.
    setInterval(() => undefined, 60_000);
    return -1;
  }
  if (state.mode === "missing") {
    process.stderr.write("nvidia-smi: command not found\n");
    return 127;
  }
  if (args.includes("-L") || args.includes("--list-gpus")) {
    process.stdout.write(formatList(state.gpu));
    return 0;
  }
  const query = option(args, "--query-gpu");
  if (query === undefined) {
    process.stderr.write("fake nvidia-smi: only --query-gpu=… --format=csv and -L are supported\n");
    return 2;
  }
  const format = parseFormat(option(args, "--format") ?? "");
  if (!format) {
    process.stderr.write('"--format" option is required when using "--query-gpu"\n\n');
    return 2;
  }
  const fields = query.split(",").map((field) => field.trim());
  const nowWall = Date.now();
  const result = formatQueryGpu(
    fields,
    format,
    state.gpu,
    readingAt(state, nowWall),
    nowWall,
    state.mode === "na",
  );
  if (!result.ok) {
    process.stdout.write(result.stderr);
    return result.exitCode;
  }
  process.stdout.write(result.stdout);
  return 0;
}

const exitCode = main(process.argv.slice(2));
if (exitCode >= 0) process.exitCode = exitCode;
