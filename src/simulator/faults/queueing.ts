import { type FaultModule, numberParam } from "./fault.js";

export const queueing: FaultModule = {
  name: "queueing",
  row: "B4",
  summary: "benign: internal long requests occupy every slot of the model; later requests wait; GPU busy",
  params: "tokens=1000000",
  persistent: false,
  activate: (spec, host) => ({
    effects: {},
    stop: host.backgroundGenerations(
      host.targetModel(spec),
      host.numParallel,
      numberParam(spec, "tokens", 1_000_000),
    ),
  }),
};
