import type { FaultModule } from "./fault.js";

export const apiHang: FaultModule = {
  name: "api-hang",
  row: "F6",
  summary: "TCP accepts, no HTTP answer on any Ollama endpoint (the /_sim control API still answers)",
  persistent: false,
  activate: () => ({ effects: { hangsApi: true } }),
};
