/**
 * nvidia-smi's CSV and list output, as the real tool formats them (see test/fixtures/gpu/):
 * `--query-gpu=<fields> --format=csv[,noheader][,nounits]` and `-L`.
 */
import type { GpuIdentity, GpuReading } from "./gpu-state.js";

/** A value: a number with nvidia-smi's unit (printed unless nounits), or a literal like "[N/A]". */
type FieldValue = { number: string; unit?: string } | { literal: string };

interface FieldDefinition {
  /** The header, e.g. "memory.used [MiB]" (units stay in the header even with nounits). */
  header: string;
  value: (gpu: GpuIdentity, reading: GpuReading, nowWall: number, naUtilization: boolean) => FieldValue;
}

const num = (value: number, unit?: string, digits = 0): FieldValue =>
  unit ? { number: value.toFixed(digits), unit } : { number: value.toFixed(digits) };
const text = (literal: string): FieldValue => ({ literal });

function timestamp(nowWall: number): string {
  const d = new Date(nowWall);
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${d.getFullYear()}/${pad(d.getMonth() + 1)}/${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

const FIELDS: Record<string, FieldDefinition> = {
  timestamp: { header: "timestamp", value: (_g, _r, now) => text(timestamp(now)) },
  driver_version: { header: "driver_version", value: (g) => text(g.driverVersion) },
  count: { header: "count", value: () => text("1") },
  name: { header: "name", value: (g) => text(g.name) },
  serial: { header: "serial", value: (g) => text(g.serial) },
  uuid: { header: "uuid", value: (g) => text(g.uuid) },
  "pci.bus_id": { header: "pci.bus_id", value: (g) => text(g.busId) },
  index: { header: "index", value: (g) => text(String(g.index)) },
  pstate: { header: "pstate", value: (_g, r) => text(r.pstate) },
  "fan.speed": { header: "fan.speed [%]", value: (_g, r) => num(r.fanPercent, "%") },
  "memory.total": { header: "memory.total [MiB]", value: (g) => num(g.memoryTotalMiB, "MiB") },
  "memory.reserved": { header: "memory.reserved [MiB]", value: () => num(346, "MiB") },
  "memory.used": { header: "memory.used [MiB]", value: (_g, r) => num(r.memoryUsedMiB, "MiB") },
  "memory.free": {
    header: "memory.free [MiB]",
    value: (g, r) => num(Math.max(0, g.memoryTotalMiB - 346 - r.memoryUsedMiB), "MiB"),
  },
  "utilization.gpu": {
    header: "utilization.gpu [%]",
    value: (_g, r, _n, na) => (na ? text("[N/A]") : num(r.utilizationGpu, "%")),
  },
  "utilization.memory": {
    header: "utilization.memory [%]",
    value: (_g, r, _n, na) => (na ? text("[N/A]") : num(r.utilizationMemory, "%")),
  },
  "temperature.gpu": { header: "temperature.gpu", value: (_g, r) => num(r.temperatureC) },
  "power.draw": { header: "power.draw [W]", value: (_g, r) => num(r.powerW, "W", 2) },
  "power.limit": { header: "power.limit [W]", value: (g) => num(g.powerLimitW, "W", 2) },
  "clocks.current.sm": { header: "clocks.current.sm [MHz]", value: (_g, r) => num(r.smClockMHz, "MHz") },
  "clocks.current.graphics": {
    header: "clocks.current.graphics [MHz]",
    value: (_g, r) => num(r.smClockMHz, "MHz"),
  },
  "clocks.current.memory": {
    header: "clocks.current.memory [MHz]",
    value: (_g, r) => num(r.memClockMHz, "MHz"),
  },
};

/** nvidia-smi's aliases for some fields. */
const ALIASES: Record<string, string> = {
  gpu_name: "name",
  gpu_uuid: "uuid",
  gpu_serial: "serial",
  gpu_bus_id: "pci.bus_id",
};

export interface CsvFormat {
  header: boolean;
  units: boolean;
}

export type QueryResult = { ok: true; stdout: string } | { ok: false; stderr: string; exitCode: number };

export function parseFormat(format: string): CsvFormat | undefined {
  const parts = format.split(",").map((part) => part.trim());
  if (parts[0] !== "csv") return undefined;
  return { header: !parts.includes("noheader"), units: !parts.includes("nounits") };
}

export function formatQueryGpu(
  fields: string[],
  format: CsvFormat,
  gpu: GpuIdentity,
  reading: GpuReading,
  nowWall: number,
  naUtilization: boolean,
): QueryResult {
  const definitions: FieldDefinition[] = [];
  for (const field of fields) {
    const definition = FIELDS[ALIASES[field] ?? field];
    if (!definition)
      return { ok: false, stderr: `Field "${field}" is not a valid field to query.\n\n`, exitCode: 2 };
    definitions.push(definition);
  }
  const values = definitions.map((definition) => {
    const value = definition.value(gpu, reading, nowWall, naUtilization);
    if ("literal" in value) return value.literal;
    return format.units && value.unit ? `${value.number} ${value.unit}` : value.number;
  });
  const lines = [];
  if (format.header) lines.push(definitions.map((definition) => definition.header).join(", "));
  lines.push(values.join(", "));
  return { ok: true, stdout: `${lines.join("\n")}\n` };
}

export function formatList(gpu: GpuIdentity): string {
  return `GPU ${gpu.index}: ${gpu.name} (UUID: ${gpu.uuid})\n`;
}
