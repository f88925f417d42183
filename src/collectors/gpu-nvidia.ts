import type { GpuSample } from "../core/types.js";
import type { CollectorOutput, HostCollectorContext } from "./collector.js";
import { parseBytes, parsePercentRatio, parsePlainNumber, withReadings } from "./gpu-values.js";
import { describeToolFailure, isMissingProgram, runTool, stuckTool, ToolError } from "./tool.js";

export const NVIDIA_QUERY_FIELDS = [
  "index",
  "uuid",
  "name",
  "utilization.gpu",
  "memory.used",
  "memory.total",
  "temperature.gpu",
  "power.draw",
] as const;

export function nvidiaSmiArgv(program: string): string[] {
  return [program, `--query-gpu=${NVIDIA_QUERY_FIELDS.join(",")}`, "--format=csv,noheader,nounits"];
}

const IDENTITY_PLACEHOLDER = /^\[.*\]$|^N\/A$/i;

/**
 * Parses `--query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw
 * --format=csv,noheader,nounits` output, one GPU per line. Also tolerates a header line, units left
 * in (`45 %`, `596 MiB`, `26.20 W`), CRLF line ends (Windows) and a comma inside the GPU name.
 * Placeholders ([N/A] under MIG, [Not Supported], ERR!, …) leave the field absent.
 */
export function parseNvidiaSmiCsv(text: string): GpuSample[] {
  const samples: GpuSample[] = [];
  for (const line of text.split(/\r?\n/)) {
    const cells = line.split(",").map((cell) => cell.trim());
    if (cells.length < NVIDIA_QUERY_FIELDS.length) continue;
    if (cells[0]?.toLowerCase() === "index") continue;
    // Only the name can contain a comma: the first two and the last five cells are fixed.
    const tail = cells.slice(-5);
    const [index = "", uuid = ""] = cells;
    const name = cells.slice(2, cells.length - 5).join(", ");
    if (!/^\d+$/.test(index)) continue;
    const [utilization, memoryUsed, memoryTotal, temperature, power] = tail;
    const sample: GpuSample = {
      index,
      uuid: IDENTITY_PLACEHOLDER.test(uuid) ? "" : uuid,
      name: IDENTITY_PLACEHOLDER.test(name) ? "" : name,
    };
    samples.push(
      withReadings(sample, {
        utilization: parsePercentRatio(utilization),
        memoryUsedBytes: parseBytes(memoryUsed, "mib"),
        memoryTotalBytes: parseBytes(memoryTotal, "mib"),
        temperatureCelsius: parsePlainNumber(temperature),
        powerWatts: parsePlainNumber(power),
      }),
    );
  }
  return samples;
}

/** Runs nvidia-smi once under gpu.timeout (or less, when the caller's budget is smaller). */
export async function collectNvidiaGpus(
  ctx: HostCollectorContext,
  timeoutMs = ctx.config.gpu.timeout,
): Promise<CollectorOutput<GpuSample[]>> {
  const program = ctx.config.gpu.nvidiaSmi;
  const stuck = stuckTool("nvidia-smi", program);
  if (stuck) throw new ToolError(stuck, true);
  const result = await runTool(nvidiaSmiArgv(program), {
    timeoutMs,
    ...(ctx.spawn ? { spawn: ctx.spawn } : {}),
  });
  if (isMissingProgram(result)) return { applies: false, reason: `${program} not found` };
  if (/No devices were found/i.test(result.stdout + result.stderr)) {
    return { applies: false, reason: "nvidia-smi found no NVIDIA GPU" };
  }
  const failure = describeToolFailure("nvidia-smi", result, timeoutMs);
  if (failure) throw new ToolError(failure, result.timedOut);
  const gpus = parseNvidiaSmiCsv(result.stdout);
  if (gpus.length === 0 && result.stdout.trim() !== "") {
    throw new ToolError(
      `nvidia-smi printed nothing recognizable: ${result.stdout.trim().split("\n")[0]?.slice(0, 200)}`,
      false,
    );
  }
  return { applies: true, value: gpus };
}
