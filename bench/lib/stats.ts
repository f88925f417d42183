/** Small numeric helpers for the benchmark reports. */

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: number[]): Spread | undefined {
  const m = median(values);
  if (m === undefined) return undefined;
  return { median: m, min: Math.min(...values), max: Math.max(...values), n: values.length };
}

/** Least squares y = a + b·x, with R². */
export function linearFit(points: { x: number; y: number }[]): {
  intercept: number;
  slope: number;
  r2: number;
} {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const slope = sxx === 0 ? 0 : sxy / sxx;
  const intercept = my - slope * mx;
  const ssTot = points.reduce((s, p) => s + (p.y - my) ** 2, 0);
  const ssRes = points.reduce((s, p) => s + (p.y - (intercept + slope * p.x)) ** 2, 0);
  return { intercept, slope, r2: ssTot === 0 ? 1 : 1 - ssRes / ssTot };
}

/** A Markdown table; cells are already text. */
export function markdownTable(header: string[], rows: string[][], align?: ("l" | "r")[]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const rule = header.map((_, i) => (align?.[i] === "r" ? "---:" : "---"));
  return [line(header), line(rule), ...rows.map(line)].join("\n");
}

export function fixed(value: number, digits: number): string {
  return value.toFixed(digits);
}
