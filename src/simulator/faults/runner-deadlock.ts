import type { FaultModule } from "./fault.js";

export const runnerDeadlock: FaultModule = {
  name: "runner-deadlock",
  row: "F1",
  summary:
    "the runner is alive and idle but generates nothing: APIs answer, model listed, VRAM held, GPU ~0 %",
  persistent: false,
  activate: () => ({ effects: { runnerMode: { kind: "deadlock" } } }),
};
