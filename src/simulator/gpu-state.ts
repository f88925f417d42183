/**
 * The fake GPU: what the simulator's state means for nvidia-smi. The simulator writes a
 * `GpuStateFile` atomically into its stateDir; the fake nvidia-smi reads it at each call and
 * derives utilization from how recently a token was generated (so a frozen runner reads ~0 %).
 */

/** The wrapper tells the fake nvidia-smi where the state file is through this variable. */
export const GPU_STATE_ENV = "FAKE_NVIDIA_SMI_STATE";

export type GpuToolMode = "ok" | "hang" | "missing" | "na";

export interface GpuStateFile {
  mode: GpuToolMode;
  /** Epoch ms until which the GPU counts as busy (last token + busy window). */
  busyUntilWall: number;
  /** VRAM of loaded models whose runner is alive, plus memory a wedged GPU holds. */
  memoryUsedBytes: number;
  gpu: GpuIdentity;
}

export interface GpuIdentity {
  index: number;
  name: string;
  uuid: string;
  serial: string;
  busId: string;
  driverVersion: string;
  memoryTotalMiB: number;
  powerLimitW: number;
}

export const DEFAULT_GPU: GpuIdentity = {
  index: 0,
  name: "NVIDIA GeForce RTX 4090",
  uuid: "GPU-5c3a9f2e-8d1b-4e6a-9f70-2b1c4d5e6f70",
  serial: "[N/A]",
  busId: "00000000:01:00.0",
  driverVersion: "550.127.05",
  memoryTotalMiB: 24564,
  powerLimitW: 450,
};

/** What the GPU reports at one instant: numbers before formatting. */
export interface GpuReading {
  busy: boolean;
  utilizationGpu: number;
  utilizationMemory: number;
  memoryUsedMiB: number;
  temperatureC: number;
  powerW: number;
  pstate: string;
  smClockMHz: number;
  memClockMHz: number;
  fanPercent: number;
}

const MIB = 1024 * 1024;

export function readingAt(state: GpuStateFile, nowWall: number): GpuReading {
  const busy = nowWall < state.busyUntilWall;
  const memoryUsedMiB = Math.min(state.gpu.memoryTotalMiB, Math.round(state.memoryUsedBytes / MIB));
  return {
    busy,
    utilizationGpu: busy ? 97 : 0,
    utilizationMemory: busy ? 38 : 0,
    memoryUsedMiB,
    temperatureC: busy ? 64 : 36,
    powerW: busy ? 287.43 : memoryUsedMiB > 0 ? 31.27 : 18.62,
    pstate: busy ? "P2" : "P8",
    smClockMHz: busy ? 2520 : 210,
    memClockMHz: busy ? 10501 : 405,
    fanPercent: busy ? 46 : 30,
  };
}
