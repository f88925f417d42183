import { type FaultModule, numberParam } from "./fault.js";

export const slowLoad: FaultModule = {
  name: "slow-load",
  row: "B3",
  summary: "benign: model loads take long; the loading model is listed in /api/ps with no tokens yet",
  params: "loadMs=120000",
  persistent: false,
  activate: (spec) => ({ effects: { extraLoadMs: numberParam(spec, "loadMs", 120_000) } }),
};
