import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { type ExecResult, execArgv } from "../../src/core/exec.js";
import { ROOT } from "./paths.js";
import { waitFor } from "./wait.js";

/**
 * A throwaway systemd for tests (../shared/ENVIRONMENT.md): systemd-nspawn boots the host's /usr
 * on a volatile (tmpfs) root with a private network, the checkout bound read-only at
 * /opt/ollama-watchdog; commands run inside through `nsenter -t <its PID 1> -a`. Boots in about a
 * second; `poweroff()` always ends it (SIGKILL of our own nspawn process as a last resort).
 *
 * It boots `basic.target` only, not the host's default target: with an empty /etc, systemd
 * enables every unit the host has installed (Debian's presets enable all), so booting
 * multi-user.target would start whatever the host happens to have (haproxy, nginx, prometheus…)
 * and wait up to 2 minutes on systemd-networkd-wait-online for those that want
 * network-online.target — with no network inside. basic.target brings the manager, journald,
 * D-Bus (socket-activated, and polkitd through it): what the tests use. Services a test needs it
 * starts itself.
 */
export const CHECKOUT_IN_MACHINE = "/opt/ollama-watchdog";

export interface Machine {
  name: string;
  /** PID (host view) of the machine's systemd. */
  pid1: number;
  /** Runs argv inside the machine (all its namespaces) under a deadline; errors are data. */
  exec(argv: string[], options?: { timeoutMs?: number }): Promise<ExecResult>;
  /** Like exec, but throws with the output when the program fails: for setup steps. */
  run(argv: string[], options?: { timeoutMs?: number }): Promise<string>;
  /** Writes a file inside the machine (through its /proc/<pid1>/root). */
  writeFile(path: string, content: string, mode?: number): Promise<void>;
  /** What nspawn printed (the console), for diagnosing a failed test. */
  console(): string;
  poweroff(): Promise<void>;
}

/** Why nspawn tests cannot run here, or undefined when they can. */
export function nspawnUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "systemd-nspawn needs root";
  for (const program of ["/usr/bin/systemd-nspawn", "/usr/bin/nsenter", "/lib/systemd/systemd"]) {
    if (!existsSync(program)) return `${program} is missing (apt-get install systemd-container)`;
  }
  return undefined;
}

let counter = 0;

const MACHINE_ENV: NodeJS.ProcessEnv = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: "C.UTF-8",
  HOME: "/root",
  SYSTEMD_PAGER: "",
  SYSTEMD_COLORS: "0",
};

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** Arguments for the machine's systemd (in a container, its argv stands in for the kernel command line). */
const BOOT_ARGS = [
  "systemd.unit=basic.target",
  // Nothing to ask: the machine's /etc is empty on purpose.
  "systemd.firstboot=off",
];

export async function bootMachine(
  options: {
    name?: string;
    binds?: Array<{ source: string; target: string; readOnly?: boolean }>;
    /** Units to wait for before the machine counts as booted (the whole boot is basic.target). */
    waitForUnits?: string[];
  } = {},
): Promise<Machine> {
  const name = options.name ?? `owd-test-${process.pid}-${++counter}`;
  const binds = options.binds ?? [
    { source: ROOT.replace(/\/$/, ""), target: CHECKOUT_IN_MACHINE, readOnly: true },
  ];
  const argv = [
    "-D",
    "/",
    "--volatile=yes",
    "--register=no",
    "--keep-unit",
    "--private-network",
    "--console=pipe",
    "-q",
    "-b",
    `--machine=${name}`,
    ...binds.map((b) => `--bind${b.readOnly ? "-ro" : ""}=${b.source}:${b.target}`),
    ...BOOT_ARGS,
  ];
  let output = "";
  const nspawn: ChildProcess = spawn("systemd-nspawn", argv, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...MACHINE_ENV, SYSTEMD_NSPAWN_TMPFS_TMP: "1" },
  });
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-64_000);
  };
  nspawn.stdout?.on("data", keep);
  nspawn.stderr?.on("data", keep);
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    nspawn.on("close", () => {
      exited = true;
      resolve();
    });
    nspawn.on("error", () => {
      exited = true;
      resolve();
    });
  });
  const nspawnPid = nspawn.pid as number;

  const kill = async () => {
    if (!exited) nspawn.kill("SIGKILL");
    await Promise.race([exitPromise, new Promise((resolve) => setTimeout(resolve, 5000))]);
  };

  let pid1: number;
  try {
    pid1 = await waitFor(
      () => {
        if (exited) throw new Error(`systemd-nspawn exited:\n${output}`);
        return childPids(nspawnPid).find((pid) => commOf(pid) === "systemd");
      },
      { timeoutMs: 20_000, what: `the PID 1 of machine ${name}` },
    );
  } catch (error) {
    await kill();
    throw error;
  }

  const exec: Machine["exec"] = (command, execOptions = {}) =>
    execArgv(["nsenter", "-t", String(pid1), "-a", ...command], {
      timeoutMs: execOptions.timeoutMs ?? 30_000,
      env: MACHINE_ENV,
    });
  const run: Machine["run"] = async (command, execOptions) => {
    const result = await exec(command, execOptions);
    if (result.exitCode !== 0 || result.timedOut || result.spawnError) {
      throw new Error(
        `${command.join(" ")} failed in ${name} (exit ${result.exitCode}${result.timedOut ? ", timed out" : ""})\n` +
          `${result.stdout}\n${result.stderr}${result.spawnError ?? ""}`,
      );
    }
    return result.stdout;
  };

  const machine: Machine = {
    name,
    pid1,
    exec,
    run,
    async writeFile(path, content, mode = 0o644) {
      // Through the machine's root as the host sees it: the file lands in its tmpfs root.
      const real = `/proc/${pid1}/root${path}`;
      mkdirSync(dirname(real), { recursive: true });
      writeFileSync(real, content);
      chmodSync(real, mode);
    },
    console: () => output,
    async poweroff() {
      if (exited) return;
      await exec(["systemctl", "poweroff", "--no-block"], { timeoutMs: 5000 });
      await Promise.race([exitPromise, new Promise((resolve) => setTimeout(resolve, 15_000))]);
      await kill();
    },
  };

  const units = options.waitForUnits ?? ["basic.target", "dbus.socket"];
  try {
    // The units the tests need, not the whole boot (is-system-running would also wait for jobs
    // that timers of the host queue meanwhile). Before its bus is up, systemctl fails at once:
    // ask again until every unit is active.
    await waitFor(
      async () => {
        const state = await exec(["systemctl", "is-active", ...units], { timeoutMs: 10_000 });
        return state.exitCode === 0;
      },
      { timeoutMs: 60_000, everyMs: 100, what: `machine ${name}: ${units.join(", ")} active` },
    );
  } catch (error) {
    await machine.poweroff();
    throw error;
  }
  return machine;
}
