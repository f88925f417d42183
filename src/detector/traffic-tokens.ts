import { sameModel } from "../core/model-name.js";
import type { ModelTraffic } from "../core/types.js";

/** When the stall guard last saw a token streamed for `model`; undefined without one (or without a guard). */
export function lastTokenFor(traffic: ModelTraffic[] | undefined, model: string): number | undefined {
  let last: number | undefined;
  for (const entry of traffic ?? []) {
    if (entry.lastChunkMono !== undefined && sameModel(entry.model, model))
      last = Math.max(last ?? entry.lastChunkMono, entry.lastChunkMono);
  }
  return last;
}
