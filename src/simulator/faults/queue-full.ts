import { QUEUE_FULL_MESSAGE } from "../wire.js";
import type { FaultModule } from "./fault.js";

export const queueFull: FaultModule = {
  name: "queue-full",
  row: "F9",
  summary: "generations are refused with 503 as when OLLAMA_MAX_QUEUE is exceeded",
  persistent: false,
  activate: () => ({ effects: { generateError: { status: 503, message: QUEUE_FULL_MESSAGE } } }),
};
