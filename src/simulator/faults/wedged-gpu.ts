import { slogLine } from "../wire.js";
import { type FaultModule, numberParam } from "./fault.js";

export const wedgedGpu: FaultModule = {
  name: "wedged-gpu",
  row: "F8",
  summary:
    "the GPU is wedged: generations hang, CUDA errors in the log, VRAM held; survives restarts until cleared",
  params: "heldVramBytes=<VRAM loaded at injection>",
  persistent: true,
  activate: (spec, host) => {
    const heldVramBytes = numberParam(spec, "heldVramBytes", host.loadedVramBytes());
    host.serverLog(
      slogLine(
        Date.now(),
        "INFO",
        "gpu.go:620",
        "unable to load cudart library /usr/lib/x86_64-linux-gnu/libcudart.so.12: cudart init failure: 999",
      ),
    );
    return { effects: { wedgesGpu: { heldVramBytes } }, persisted: { ...spec, heldVramBytes } };
  },
};
