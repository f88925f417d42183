/** Small formatters shared by the report and the CLI table. Pure. */

export function iso(wall: number): string {
  return new Date(wall).toISOString();
}

/** "850 ms", "30 s", "1.5 s", "3 min 30 s", "1 h 5 min". */
export function humanDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) {
    const s = Math.round(ms / 100) / 10;
    return `${Number.isInteger(s) ? s.toFixed(0) : s.toFixed(1)} s`;
  }
  const totalSeconds = Math.round(ms / 1000);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  if (h) return m ? `${h} h ${m} min` : `${h} h`;
  return s ? `${m} min ${s} s` : `${m} min`;
}

export function gib(bytes: number): string {
  return (bytes / 2 ** 30).toFixed(1);
}

export function percent(ratio: number): string {
  return `${Math.round(ratio * 100)} %`;
}
