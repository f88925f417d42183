import type { FaultModule } from "./fault.js";

export const crash: FaultModule = {
  name: "crash",
  row: "F7",
  summary: "the server dies: listener closed (connection refused), runners gone, until restart",
  persistent: false,
  activate: (_spec, host) => {
    host.crash();
    return { effects: {} };
  },
};
