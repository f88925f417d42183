import type { ProcessSample, ProcessView } from "../core/types.js";

/** What identifies a runner across pid reuse. */
export interface RunnerIdentity {
  pid: number;
  startSeconds: number;
}

export function sameProcess(a: RunnerIdentity, b: RunnerIdentity): boolean {
  return a.pid === b.pid && Math.abs(a.startSeconds - b.startSeconds) < 0.011;
}

/**
 * The runner process serving a model, in order of confidence: the runner whose `--model` path
 * ends in the model's weights blob (from /api/show); the pid learned when the model
 * and its runner appeared together; a runner whose `--model` path names the model or holds its
 * digest; the only runner. Undefined when it cannot be told (then the ladder skips kill-runner).
 */
export function runnerForModel(
  model: { name: string; digest?: string | undefined; blob?: string | undefined },
  runners: readonly ProcessSample[],
  knownPid: number | undefined,
): ProcessSample | undefined {
  if (model.blob) {
    const byBlob = runners.filter((r) => r.modelPath?.split("/").pop() === model.blob);
    if (byBlob.length === 1) return byBlob[0];
  }
  if (knownPid !== undefined) {
    const known = runners.find((r) => r.pid === knownPid);
    if (known) return known;
  }
  const byPath = runners.filter((r) => r.modelPath !== undefined && modelPathMatches(r.modelPath, model));
  if (byPath.length === 1) return byPath[0];
  if (runners.length === 1) return runners[0];
  return undefined;
}

function modelPathMatches(path: string, model: { name: string; digest?: string | undefined }): boolean {
  const base = path.split("/").pop() ?? path;
  if (path === model.name || base === model.name) return true;
  const hex = model.digest?.replace(/^sha256[:-]/, "");
  return hex !== undefined && hex.length >= 12 && path.includes(hex);
}

/**
 * The runner kill-runner may signal: a child of the target's proven server (procfs.ts) whose
 * `--model` names this model's weights blob from /api/show (an MLX runner names the model
 * itself). Anything less is not proof, and the answer says why.
 */
export function provenRunner(
  model: { name: string; blob?: string | undefined },
  processes: ProcessView | undefined,
): { runner: ProcessSample } | { why: string } {
  if (!processes) return { why: "the target's processes were not observed this tick" };
  if (processes.unproven) return { why: processes.unproven };
  const serverPids = new Set(processes.server.map((s) => s.pid));
  const children = processes.runners.filter((r) => serverPids.has(r.ppid));
  const serving = children.filter(
    (r) =>
      (model.blob !== undefined && r.modelPath?.split("/").pop() === model.blob) ||
      (r.modelPath === model.name && /(^|\s)--mlx-engine(\s|$)/.test(r.cmdline)),
  );
  if (serving.length === 1) return { runner: serving[0] as ProcessSample };
  if (serving.length > 1)
    return { why: `${serving.length} runners claim ${model.name}'s weights: cannot tell which` };
  if (model.blob === undefined) {
    return { why: `/api/show did not name ${model.name}'s weights blob: its runner cannot be proven` };
  }
  return {
    why: `none of the server's ${children.length} runner(s) serves ${model.name} (--model …/${model.blob})`,
  };
}
