import { type FaultModule, FaultParamError, stringParam } from "./fault.js";

/**
 * Endless degenerate output (#12512, ROCm): every generation streams the same token forever at
 * full GPU. The runner flushes it in chunks of varying length, so Ollama's token-repeat guard
 * (llm/server.go: more than 30 identical chunks ends the stream) never fires; `chunks=same` sends
 * one token per chunk, and the guard ends each answer after 31 without a final message.
 */
export const degenerateOutput: FaultModule = {
  name: "degenerate-output",
  row: "F10",
  summary: "every generation streams the same token forever at full GPU, never done (#12512)",
  params: "chunks=varying|same",
  persistent: false,
  activate: (spec) => {
    const chunks = stringParam(spec, "chunks", "varying");
    if (chunks !== "varying" && chunks !== "same")
      throw new FaultParamError(`degenerate-output: chunks must be "varying" or "same", got "${chunks}"`);
    return { effects: { answerStyle: chunks === "same" ? "degenerate-same" : "degenerate" } };
  },
};
