/** An Ollama release as /api/version reports it ("0.12.5", "v0.33.0-rc2") → [major, minor, patch]. */
export function parseOllamaVersion(text: string): number[] | undefined {
  const match = /^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$/.exec(text.trim());
  if (!match) return undefined;
  return [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
}

export function compareOllamaVersions(a: number[], b: number[]): number {
  for (let i = 0; i < 3; i++) {
    const diff = (a[i] ?? 0) - (b[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

/**
 * Whether this server lists a model in /api/ps while its runner is still loading: up to 0.24 the
 * runner is in `s.loaded` before WaitUntilRunning (server/sched.go v0.20.7); from 0.30 it is added
 * once loaded (server/sched.go v0.30.11). A source build reports 0.0.0 and an unparseable or
 * missing version says nothing: both are taken as the newest behaviour (not listed).
 */
export function listsLoadingModels(version: string | undefined): boolean {
  const parsed = version === undefined ? undefined : parseOllamaVersion(version);
  if (!parsed || compareOllamaVersions(parsed, [0, 0, 0]) === 0) return false;
  return compareOllamaVersions(parsed, [0, 25, 0]) < 0;
}
