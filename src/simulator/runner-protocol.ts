/**
 * What the simulator's server and its runner processes say to each other over HTTP on the
 * runner's port (as Ollama talks to its runners): GET /health, POST /completion (NDJSON), POST /mode.
 */

/**
 * How a runner behaves. `deadlock`: alive, idle, no tokens. `spin`: 100 % CPU, no tokens.
 * `stall`: each generation gets `afterTokens` more tokens, then nothing. `wedged`: like deadlock,
 * and every generation prints a CUDA error first.
 */
export type RunnerMode =
  | { kind: "normal" }
  | { kind: "deadlock" }
  | { kind: "spin" }
  | { kind: "stall"; afterTokens: number }
  | { kind: "wedged" };

/** Passed in the environment (not the command line, which must read like Ollama's). */
export interface RunnerConfig {
  loadMs: number;
  tokenIntervalMs: number;
  cpuMsPerToken: number;
  mode: RunnerMode;
}

export const RUNNER_CONFIG_ENV = "OLLAMA_SIM_RUNNER_CONFIG";
/** argv[0] the runner shows in /proc/PID/cmdline (its process title). */
export const RUNNER_PROGRAM_ENV = "OLLAMA_SIM_RUNNER_PROGRAM";
/** A GPU-discovery child: lives this many ms, serves nothing, exits 0. */
export const DISCOVERY_MS_ENV = "OLLAMA_SIM_DISCOVERY_MS";

/**
 * How answers look. `normal`: the deterministic sentence. `empty`: done at once, no token
 * (#18213). `degenerate`: the same token forever, in chunks of varying length as a runner flushes
 * them (so Ollama's 30-repeat guard, which compares whole chunks, does not stop it: #12512);
 * `degenerate-same` sends one token per chunk (the guard ends it).
 */
export type AnswerStyle = "normal" | "empty" | "degenerate" | "degenerate-same";

export interface CompletionRequest {
  /** How many tokens to produce (the answer's natural length or num_predict, whichever is smaller). */
  tokens: number;
  /** Whether the generation ends because it hit num_predict ("length") or by itself ("stop"). */
  doneReason: "stop" | "length";
  style?: AnswerStyle;
}

/** One NDJSON line of a completion stream. */
export type CompletionLine =
  | { content: string }
  | { done: true; doneReason: "stop" | "length"; evalCount: number };
