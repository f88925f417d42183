import { doctorExitCode, formatChecks, runDoctor } from "../install/doctor.js";
import { defaultExec } from "../install/system.js";

/** `doctor`: every check with ✓/✗ and a fix hint; exit 1 when any failed (src/install/doctor.ts). */
export async function doctorCommand(opts: { config?: string; root?: string }): Promise<number> {
  const results = await runDoctor(opts, { exec: defaultExec, isRoot: process.getuid?.() === 0 });
  process.stdout.write(`${formatChecks(results)}\n`);
  return doctorExitCode(results);
}
