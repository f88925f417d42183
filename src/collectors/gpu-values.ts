import type { GpuSample } from "../core/types.js";

/**
 * Numbers from GPU tools. Tools print placeholders where a value is unavailable ("[N/A]",
 * "[Not Supported]", "[Requested functionality has been deprecated]", "N/A (Secondary die)",
 * "ERR!"); anything that does not start with a number is treated as absent, never as NaN or 0.
 */
const LEADING_NUMBER = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?/;

export function parseReading(raw: string | undefined): { value: number; unit: string } | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  const match = LEADING_NUMBER.exec(text);
  if (!match) return undefined;
  const value = Number(match[0]);
  if (!Number.isFinite(value)) return undefined;
  return { value, unit: text.slice(match[0].length).trim() };
}

const BYTES_PER_UNIT: Record<string, number> = {
  b: 1,
  kib: 1024,
  kb: 1024,
  mib: 1024 ** 2,
  mb: 1024 ** 2,
  gib: 1024 ** 3,
  gb: 1024 ** 3,
};

/** A memory reading in bytes; `defaultUnit` applies when the tool printed none (nounits). */
export function parseBytes(raw: string | undefined, defaultUnit: "b" | "mib"): number | undefined {
  const reading = parseReading(raw);
  if (!reading) return undefined;
  const factor = BYTES_PER_UNIT[(reading.unit || defaultUnit).toLowerCase()];
  if (factor === undefined || reading.value < 0) return undefined;
  return Math.round(reading.value * factor);
}

/** A percentage as a ratio 0..1. */
export function parsePercentRatio(raw: string | undefined): number | undefined {
  const reading = parseReading(raw);
  if (!reading || reading.value < 0 || reading.value > 100) return undefined;
  return reading.value / 100;
}

export function parsePlainNumber(raw: string | undefined): number | undefined {
  return parseReading(raw)?.value;
}

type GpuReading =
  | "utilization"
  | "memoryUsedBytes"
  | "memoryTotalBytes"
  | "temperatureCelsius"
  | "powerWatts";

/** The sample with only the readings the tool really reported (absent keys, not undefined values). */
export function withReadings(
  identity: Pick<GpuSample, "index" | "uuid" | "name">,
  readings: Record<GpuReading, number | undefined>,
): GpuSample {
  const sample: GpuSample = { ...identity };
  if (readings.utilization !== undefined) sample.utilization = readings.utilization;
  if (readings.memoryUsedBytes !== undefined) sample.memoryUsedBytes = readings.memoryUsedBytes;
  if (readings.memoryTotalBytes !== undefined) sample.memoryTotalBytes = readings.memoryTotalBytes;
  if (readings.temperatureCelsius !== undefined) sample.temperatureCelsius = readings.temperatureCelsius;
  if (readings.powerWatts !== undefined) sample.powerWatts = readings.powerWatts;
  return sample;
}
