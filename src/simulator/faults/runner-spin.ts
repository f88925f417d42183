import type { FaultModule } from "./fault.js";

export const runnerSpin: FaultModule = {
  name: "runner-spin",
  row: "F2",
  summary: "the runner burns 100 % CPU and generates nothing while the GPU is idle",
  persistent: false,
  activate: () => ({ effects: { runnerMode: { kind: "spin" } } }),
};
