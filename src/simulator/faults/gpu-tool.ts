import type { FaultModule } from "./fault.js";

export const gpuToolHang: FaultModule = {
  name: "gpu-tool-hang",
  row: "B5",
  summary: "benign: nvidia-smi hangs until killed",
  persistent: true,
  activate: () => ({ effects: { gpuTool: "hang" } }),
};

export const gpuToolMissing: FaultModule = {
  name: "gpu-tool-missing",
  row: "B5",
  summary: "benign: nvidia-smi is absent (the executable at nvidiaSmiPath is removed)",
  persistent: true,
  activate: () => ({ effects: { gpuTool: "missing" } }),
};

export const gpuToolNa: FaultModule = {
  name: "gpu-tool-na",
  row: "B5",
  summary: "benign: nvidia-smi prints [N/A] for utilization, like a MIG-partitioned card",
  persistent: true,
  activate: () => ({ effects: { gpuTool: "na" } }),
};
