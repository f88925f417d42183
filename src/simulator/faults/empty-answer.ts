import type { FaultModule } from "./fault.js";

/** HTTP 200 with an empty answer for every generation (#18213, after a GPU reset): done, no token, eval_count 0. */
export const emptyAnswer: FaultModule = {
  name: "empty-answer",
  row: "F10",
  summary: "every generation answers HTTP 200, done with no token and eval_count 0 (#18213)",
  persistent: false,
  activate: () => ({ effects: { answerStyle: "empty" } }),
};
