import { type FaultModule, numberParam } from "./fault.js";

export const stuckStopping: FaultModule = {
  name: "stuck-stopping",
  row: "F4",
  summary:
    'the model is stuck "Stopping…": listed with expires_at in the past, VRAM held, requests and new loads hang',
  params: "expiredAgoMs=30000",
  persistent: false,
  activate: (spec) => ({
    effects: {
      runnerMode: { kind: "deadlock" },
      stuckStopping: { expiredAgoMs: numberParam(spec, "expiredAgoMs", 30_000) },
    },
  }),
};
