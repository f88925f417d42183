import { type FaultModule, numberParam } from "./fault.js";

export const streamStall: FaultModule = {
  name: "stream-stall",
  row: "F3",
  summary: "each generation streams a few tokens, then stops with the connection left open",
  params: "afterTokens=3",
  persistent: false,
  activate: (spec) => ({
    effects: { runnerMode: { kind: "stall", afterTokens: numberParam(spec, "afterTokens", 3) } },
  }),
};
