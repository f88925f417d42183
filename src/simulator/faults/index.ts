import type { FaultName } from "../types.js";
import { apiHang } from "./api-hang.js";
import { crash } from "./crash.js";
import { degenerateOutput } from "./degenerate-output.js";
import { emptyAnswer } from "./empty-answer.js";
import { errors } from "./errors.js";
import type { FaultModule } from "./fault.js";
import { gpuToolHang, gpuToolMissing, gpuToolNa } from "./gpu-tool.js";
import { longGeneration } from "./long-generation.js";
import { queueFull } from "./queue-full.js";
import { queueing } from "./queueing.js";
import { runnerDeadlock } from "./runner-deadlock.js";
import { runnerSpin } from "./runner-spin.js";
import { schedulerDeadlock } from "./scheduler-deadlock.js";
import { schedulerFreeze } from "./scheduler-freeze.js";
import { slowLoad } from "./slow-load.js";
import { streamStall } from "./stream-stall.js";
import { stuckStopping } from "./stuck-stopping.js";
import { wedgedGpu } from "./wedged-gpu.js";

/** Every fault, in FAILURE-MODES.md order. */
export const FAULTS: readonly FaultModule[] = [
  runnerDeadlock,
  runnerSpin,
  streamStall,
  stuckStopping,
  schedulerDeadlock,
  apiHang,
  crash,
  wedgedGpu,
  errors,
  queueFull,
  longGeneration,
  slowLoad,
  queueing,
  gpuToolHang,
  gpuToolMissing,
  gpuToolNa,
  schedulerFreeze,
  emptyAnswer,
  degenerateOutput,
];

export function findFault(name: string): FaultModule | undefined {
  return FAULTS.find((fault) => fault.name === name);
}

export function isFaultName(name: string): name is FaultName {
  return findFault(name) !== undefined;
}
