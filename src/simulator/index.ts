/** The fault-injecting Ollama simulator (DESIGN.md §8). */
export { FAULTS, findFault } from "./faults/index.js";
export { startSimulator } from "./simulator.js";
export { postArgv, type Supervisor, type SupervisorOptions, startSupervisor } from "./supervisor.js";
export type {
  FaultName,
  FaultSpec,
  ModelSpec,
  RunnerInfo,
  Simulator,
  SimulatorOptions,
  SimulatorPhase,
  SimulatorTiming,
} from "./types.js";
export { FAULT_NAMES } from "./types.js";
