import type { GpuSample } from "../core/types.js";
import type { CollectorOutput, HostCollectorContext } from "./collector.js";
import { parseBytes, parsePercentRatio, parsePlainNumber, withReadings } from "./gpu-values.js";
import { describeToolFailure, isMissingProgram, runTool, stuckTool, ToolError } from "./tool.js";

export function rocmSmiArgv(program: string): string[] {
  return [
    program,
    "--showid",
    "--showproductname",
    "--showuniqueid",
    "--showbus",
    "--showuse",
    "--showmeminfo",
    "vram",
    "--showtemp",
    "--showpower",
    "--json",
  ];
}

/**
 * rocm-smi keys are human strings that drift between ROCm versions ("GPU ID" → "Device ID",
 * "Card series" → "Card Series", "Device Name" added in 6.1, "Average Graphics Package Power" →
 * "Current Socket Graphics Package Power" on newer parts). Keys are compared case- and
 * space-insensitively and each reading lists the spellings seen, first match wins.
 */
const KEYS = {
  name: ["device name", "card series", "card sku", "card model"],
  uniqueId: ["unique id"],
  pciBus: ["pci bus"],
  utilization: ["gpu use (%)"],
  memoryUsed: ["vram total used memory (b)"],
  memoryTotal: ["vram total memory (b)"],
  temperature: [
    "temperature (sensor edge) (c)",
    "temperature (sensor junction) (c)",
    "temperature (sensor memory) (c)",
  ],
  power: [
    "average graphics package power (w)",
    "current socket graphics package power (w)",
    "average socket power (w)",
  ],
} as const;

const normalizeKey = (key: string) => key.trim().toLowerCase().replace(/\s+/g, " ").replace(/:$/, "");
const isPlaceholder = (value: string) => /^n\/a\b/i.test(value.trim()) || value.trim() === "";
/** Old ROCm printed PCI vendor ids ("0x1002") where the product name belongs. */
const isBareHexId = (value: string) => /^0x[0-9a-f]+$/i.test(value.trim());

type Card = Map<string, string>;

function first(card: Card, keys: readonly string[], usable: (value: string) => boolean = () => true) {
  for (const key of keys) {
    const value = card.get(key);
    if (value !== undefined && !isPlaceholder(value) && usable(value)) return value.trim();
  }
  return undefined;
}

/** The JSON object in rocm-smi's output, which some versions precede with WARNING lines. */
function extractJsonObject(text: string): Record<string, unknown> {
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  if (start < 0 || end < start) throw new Error("rocm-smi printed no JSON object");
  const parsed: unknown = JSON.parse(text.slice(start, end + 1));
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
    throw new Error("rocm-smi JSON is not an object");
  return parsed as Record<string, unknown>;
}

/** Parses `rocm-smi … --json` output (ROCm 4.3–6.x): one sample per "cardN" key, sorted by N. */
export function parseRocmSmiJson(text: string): GpuSample[] {
  const document = extractJsonObject(text);
  const cards = Object.entries(document)
    .map(([key, value]) => ({ index: /^card(\d+)$/i.exec(key)?.[1], value }))
    .filter((entry): entry is { index: string; value: Record<string, unknown> } =>
      Boolean(entry.index !== undefined && entry.value && typeof entry.value === "object"),
    )
    .sort((a, b) => Number(a.index) - Number(b.index));
  return cards.map(({ index, value }) => {
    const card: Card = new Map(
      Object.entries(value)
        .filter((entry): entry is [string, string | number] => ["string", "number"].includes(typeof entry[1]))
        .map(([key, raw]) => [normalizeKey(key), String(raw)]),
    );
    return withReadings(
      {
        index,
        uuid: first(card, KEYS.uniqueId) ?? first(card, KEYS.pciBus) ?? "",
        name: first(card, KEYS.name, (value) => !isBareHexId(value)) ?? "",
      },
      {
        utilization: parsePercentRatio(first(card, KEYS.utilization)),
        memoryUsedBytes: parseBytes(first(card, KEYS.memoryUsed), "b"),
        memoryTotalBytes: parseBytes(first(card, KEYS.memoryTotal), "b"),
        temperatureCelsius: parsePlainNumber(first(card, KEYS.temperature)),
        powerWatts: parsePlainNumber(first(card, KEYS.power)),
      },
    );
  });
}

const NO_AMD_GPU = /No AMD GPUs|amdgpu not found|Driver not initialized/i;

/** Runs rocm-smi once under the given deadline (gpu.timeout by default). */
export async function collectRocmGpus(
  ctx: HostCollectorContext,
  timeoutMs = ctx.config.gpu.timeout,
): Promise<CollectorOutput<GpuSample[]>> {
  const program = ctx.config.gpu.rocmSmi;
  const stuck = stuckTool("rocm-smi", program);
  if (stuck) throw new ToolError(stuck, true);
  const result = await runTool(rocmSmiArgv(program), {
    timeoutMs,
    ...(ctx.spawn ? { spawn: ctx.spawn } : {}),
  });
  if (isMissingProgram(result)) return { applies: false, reason: `${program} not found` };
  if (!result.timedOut && NO_AMD_GPU.test(result.stdout + result.stderr) && !result.stdout.includes("{")) {
    return { applies: false, reason: "rocm-smi found no AMD GPU" };
  }
  const failure = describeToolFailure("rocm-smi", result, timeoutMs);
  if (failure) throw new ToolError(failure, result.timedOut);
  return { applies: true, value: parseRocmSmiJson(result.stdout) };
}
