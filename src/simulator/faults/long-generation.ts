import { type FaultModule, numberParam } from "./fault.js";

export const longGeneration: FaultModule = {
  name: "long-generation",
  row: "B2",
  summary:
    "benign: an internal stream keeps producing tokens for a long time (GPU busy, runner CPU advancing)",
  params: "tokens=1000000",
  persistent: false,
  activate: (spec, host) => ({
    effects: {},
    stop: host.backgroundGenerations(host.targetModel(spec), 1, numberParam(spec, "tokens", 1_000_000)),
  }),
};
