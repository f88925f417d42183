import type { FaultModule } from "./fault.js";

export const schedulerDeadlock: FaultModule = {
  name: "scheduler-deadlock",
  row: "F5",
  summary: "loaded models keep working; loading any model (or reloading a killed one) hangs; /api/ps hangs",
  params: "psHangs=true",
  persistent: false,
  activate: (spec) => ({
    effects: { blocksLoads: true, hangsPs: spec.psHangs !== false && spec.psHangs !== "false" },
  }),
};
