import type { GpuToolMode } from "../gpu-state.js";
import type { OllamaProfile } from "../profiles.js";
import type { AnswerStyle, RunnerMode } from "../runner-protocol.js";
import type { FaultName, FaultSpec } from "../types.js";

/** What an active fault changes in the simulator; the simulator consults these at each decision. */
export interface FaultEffects {
  /** Every Ollama endpoint accepts the connection and never answers. */
  hangsApi?: boolean;
  /** /api/ps never answers. */
  hangsPs?: boolean;
  /** No model load ever completes (nor starts). */
  blocksLoads?: boolean;
  /** Every completion request (any model) hangs in the scheduler; embeddings and loaded-model lookups still answer. */
  freezesGenerations?: boolean;
  /** How every runner answers (empty, degenerate). */
  answerStyle?: AnswerStyle;
  /** Added to every load's time. */
  extraLoadMs?: number;
  /** Generations are answered with this error instead. */
  generateError?: { status: number; message: string };
  /** Every runner, present and future, makes no progress; this much VRAM stays held regardless. */
  wedgesGpu?: { heldVramBytes: number };
  gpuTool?: GpuToolMode;
  /** The target model's runner is put in this mode. Bound to that one process: killing it heals. */
  runnerMode?: RunnerMode;
  /** The target runner's unload is requested and never finishes (listed, expires_at in the past). */
  stuckStopping?: { expiredAgoMs: number };
}

/** What the simulator offers a fault while it activates. */
export interface FaultHost {
  /** The Ollama release being simulated (some faults look different per version). */
  profile: OllamaProfile;
  /** The model a fault targets: spec.model, else the first loaded, else the first known. */
  targetModel(spec: FaultSpec): string;
  /** Keeps `slots` internal generations running on the model until the returned function is called. */
  backgroundGenerations(model: string, slots: number, tokens: number): () => void;
  numParallel: number;
  /** Closes the listener and kills the runners, like the process dying. */
  crash(): void;
  /** VRAM of the runners loaded now. */
  loadedVramBytes(): number;
  serverLog(line: string): void;
}

export interface ActiveFault {
  effects: FaultEffects;
  /** For persistent faults: the spec to store (with what was measured at injection). */
  persisted?: FaultSpec;
  /** Ends what activate started (background generations). */
  stop?(): void;
}

export interface FaultModule {
  name: FaultName;
  /** Its row in FAILURE-MODES.md. */
  row: string;
  summary: string;
  /** Its parameters with defaults, for --list-faults. */
  params?: string;
  /** Survives restart() and a new simulator process on the same stateDir. */
  persistent: boolean;
  activate(spec: FaultSpec, host: FaultHost): ActiveFault;
}

export class FaultParamError extends Error {}

export function numberParam(spec: FaultSpec, key: string, fallback: number): number {
  const value = spec[key];
  if (value === undefined) return fallback;
  const number = typeof value === "string" ? Number(value) : value;
  if (typeof number !== "number" || !Number.isFinite(number) || number < 0) {
    throw new FaultParamError(
      `${spec.name}: ${key} must be a non-negative number, got ${JSON.stringify(value)}`,
    );
  }
  return number;
}

export function stringParam(spec: FaultSpec, key: string, fallback: string): string {
  const value = spec[key];
  if (value === undefined) return fallback;
  if (typeof value !== "string") throw new FaultParamError(`${spec.name}: ${key} must be a string`);
  return value;
}
