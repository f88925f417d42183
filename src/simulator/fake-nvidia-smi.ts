/**
 * The fake `nvidia-smi` as a process of its own, for when the simulator's tool socket does not
 * answer (its process is gone): reads the GPU state file (path in FAKE_NVIDIA_SMI_STATE, set by the
 * wrapper the simulator writes). The answer itself: ./tool-answers.ts.
 */
import { GPU_STATE_ENV } from "./gpu-state.js";
import { answerAsProcess, nvidiaSmiAnswer } from "./tool-answers.js";

answerAsProcess(nvidiaSmiAnswer(process.argv.slice(2), process.env[GPU_STATE_ENV]));
