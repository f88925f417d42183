import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ProcessSample } from "../core/types.js";
import type { Collector } from "./collector.js";

/** Kernel clock ticks per second (USER_HZ): 100 on every Linux architecture Ollama runs on. */
export const CLK_TCK = 100;

/** The fields of /proc/<pid>/stat the watchdog uses. */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  utimeTicks: number;
  stimeTicks: number;
  startTicks: number;
}

/**
 * Parses /proc/<pid>/stat. `comm` sits in parentheses and may itself contain spaces and
 * parentheses ("(sd-pam)", "tmux: server", "a) b"), so it spans from the first "(" to the LAST ")";
 * the fixed fields follow, numbered from 3 (state) as in proc(5).
 */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const field = (n: number) => Number(rest[n - 3]);
  const state = rest[0] ?? "";
  const parsed: ProcStat = {
    pid,
    comm: text.slice(open + 1, close),
    state,
    ppid: field(4),
    utimeTicks: field(14),
    stimeTicks: field(15),
    startTicks: field(22),
  };
  const numbers = [parsed.pid, parsed.ppid, parsed.utimeTicks, parsed.stimeTicks, parsed.startTicks];
  if (!/^[A-Za-z]$/.test(state) || !numbers.every(Number.isFinite)) return undefined;
  return parsed;
}

/** VmRSS from /proc/<pid>/status in bytes; absent for zombies and kernel threads. */
export function parseStatusRssBytes(text: string): number | undefined {
  const match = /^VmRSS:\s*(\d+)\s*kB/m.exec(text);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** /proc/<pid>/cmdline is NUL-separated argv (with a trailing NUL). */
export function parseCmdline(raw: string): string[] {
  return raw.split("\0").filter((arg, i, all) => arg !== "" || i < all.length - 1);
}

/** `--model X` / `--model=X` and `--port N` of the three runner generations. */
export function parseRunnerArgs(argv: string[]): { modelPath?: string; port?: number } {
  const flagValue = (flag: string): string | undefined => {
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i] as string;
      if (arg === flag) return argv[i + 1];
      if (arg.startsWith(`${flag}=`)) return arg.slice(flag.length + 1);
    }
    return undefined;
  };
  const result: { modelPath?: string; port?: number } = {};
  const modelPath = flagValue("--model");
  if (modelPath) result.modelPath = modelPath;
  const port = Number(flagValue("--port"));
  if (Number.isInteger(port) && port > 0 && port < 65536) result.port = port;
  return result;
}

/**
 * A process that renamed itself (process.title, setproctitle) leaves one space-joined string,
 * padded with NULs, where exec left one argument per NUL.
 */
function runnerArgv(argv: string[]): string[] {
  const present = argv.filter((arg) => arg !== "");
  return present.length === 1 ? (present[0] as string).trim().split(/\s+/) : argv;
}

interface ScannedProcess {
  stat: ProcStat;
  /** undefined when it could not be read in time (a process in D state can block the read). */
  argv: string[] | undefined;
}

/** How long a cmdline read of a process in D state may take before the scan goes on without it. */
const STUCK_READ_MS = 250;

/**
 * Scans procfs for the Ollama server and its runners. Keeps state across scans for one reason:
 * reading /proc/<pid>/cmdline takes the process's mmap lock, so the read blocks forever when that
 * process is stuck in D state holding it (the wedged-GPU case), tying up a libuv thread. For a
 * D-state process the scanner reuses the argv it read earlier, waits at most STUCK_READ_MS for a
 * fresh read, and never starts a second read while one is still stuck.
 */
export class ProcessScanner {
  private readonly argvCache = new Map<string, string[]>();
  private readonly stuckReads = new Set<string>();
  /** The walk in progress per procfs root: targets scanning in the same tick share one walk. */
  private readonly walks = new Map<string, Promise<ScannedProcess[]>>();

  async scan(
    procRoot: string,
    patterns: { server: RegExp; runner: RegExp },
  ): Promise<{ server: ProcessSample[]; runners: ProcessSample[] }> {
    const scanned = await this.walk(procRoot);

    const text = (process: ScannedProcess) => (process.argv ?? []).join(" ").trim();
    const servers = scanned.filter(
      (p) => p.argv && patterns.server.test(text(p)) && !patterns.runner.test(text(p)),
    );
    const serverPids = new Set(servers.map((p) => p.stat.pid));
    // Runners are direct children of `ollama serve`. When the server is visible, only its own
    // children count: another Ollama on the same host (another target) has runners of its own.
    // Without a visible server (procfs of another namespace) every runner-looking process counts.
    // A zombie's argv is gone and a D-state one may be unreadable: a child of the server that cannot
    // be named is still one of its runners.
    const ownedByServer = (p: ScannedProcess) => serverPids.size === 0 || serverPids.has(p.stat.ppid);
    const runners = scanned.filter(
      (p) =>
        (p.argv && patterns.runner.test(text(p)) && ownedByServer(p)) ||
        (!text(p) && serverPids.has(p.stat.ppid)),
    );
    return {
      server: await Promise.all(servers.map((p) => this.sample(procRoot, p))),
      runners: await Promise.all(runners.map((p) => this.sample(procRoot, p))),
    };
  }

  /**
   * One pass over procfs: stat of every process, argv from the cache where the process is known.
   * Concurrent callers (one per target, all in the same tick) share the pass in progress.
   */
  private walk(procRoot: string): Promise<ScannedProcess[]> {
    const inProgress = this.walks.get(procRoot);
    if (inProgress) return inProgress;
    const walk = (async () => {
      const entries = await readdir(procRoot);
      const pids = entries.filter((name) => /^\d+$/.test(name));
      const scanned = (await Promise.all(pids.map((pid) => this.read(procRoot, pid)))).filter(
        (process): process is ScannedProcess => process !== undefined,
      );
      this.forgetExcept(procRoot, scanned);
      return scanned;
    })().finally(() => this.walks.delete(procRoot));
    this.walks.set(procRoot, walk);
    return walk;
  }

  /**
   * A process's argv is read once: pid and start time name the process, and comm changes with
   * its title (prctl PR_SET_NAME), the one way a process rewrites its command line in practice.
   */
  private key(procRoot: string, stat: ProcStat): string {
    return `${procRoot}\0${stat.pid}\0${stat.startTicks}\0${stat.comm}`;
  }

  private async read(procRoot: string, pid: string): Promise<ScannedProcess | undefined> {
    try {
      const stat = parseStat(await readFile(join(procRoot, pid, "stat"), "utf8"));
      if (!stat) return undefined;
      return { stat, argv: await this.readArgv(procRoot, stat) };
    } catch {
      // Vanished mid-scan (ENOENT/ESRCH), or unreadable (hidepid): not one we can judge.
      return undefined;
    }
  }

  private async readArgv(procRoot: string, stat: ProcStat): Promise<string[] | undefined> {
    const key = this.key(procRoot, stat);
    const path = join(procRoot, String(stat.pid), "cmdline");
    const cached = this.argvCache.get(key);
    if (cached) return cached;
    if (stat.state !== "D") {
      const argv = parseCmdline(await readFile(path, "utf8"));
      this.argvCache.set(key, argv);
      return argv;
    }
    if (this.stuckReads.has(key)) return undefined;
    this.stuckReads.add(key);
    const read = readFile(path, "utf8")
      .then((raw) => {
        const argv = parseCmdline(raw);
        this.argvCache.set(key, argv);
        return argv;
      })
      .catch(() => undefined)
      .finally(() => this.stuckReads.delete(key));
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), STUCK_READ_MS);
    });
    try {
      return await Promise.race([read, giveUp]);
    } finally {
      clearTimeout(timer);
    }
  }

  private forgetExcept(procRoot: string, alive: ScannedProcess[]): void {
    const keep = new Set(alive.map((p) => this.key(procRoot, p.stat)));
    for (const key of this.argvCache.keys()) {
      if (key.startsWith(`${procRoot}\0`) && !keep.has(key)) this.argvCache.delete(key);
    }
  }

  private async sample(procRoot: string, process: ScannedProcess): Promise<ProcessSample> {
    const { stat, argv = [] } = process;
    const sample: ProcessSample = {
      pid: stat.pid,
      ppid: stat.ppid,
      cmdline: argv.join(" ").trim(),
      state: stat.state,
      cpuSeconds: (stat.utimeTicks + stat.stimeTicks) / CLK_TCK,
      startSeconds: stat.startTicks / CLK_TCK,
      ...parseRunnerArgs(runnerArgv(argv)),
    };
    try {
      const rssBytes = parseStatusRssBytes(
        await readFile(join(procRoot, String(stat.pid), "status"), "utf8"),
      );
      if (rssBytes !== undefined) sample.rssBytes = rssBytes;
    } catch {
      // Vanished since the stat read: the sample above is still what was true a moment ago.
    }
    return sample;
  }
}

const sharedScanner = new ProcessScanner();

/** Server and runner processes of the target, by its configured regexes over the cmdline. */
export function createProcfsCollector(
  scanner: ProcessScanner = sharedScanner,
): Collector<{ server: ProcessSample[]; runners: ProcessSample[] }> {
  return {
    name: "procfs",
    async collect(ctx) {
      const patterns = {
        server: new RegExp(ctx.target.processes.server),
        runner: new RegExp(ctx.target.processes.runner),
      };
      try {
        return { applies: true, value: await scanner.scan(ctx.procRoot, patterns) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") {
          return { applies: false, reason: `no procfs at ${ctx.procRoot}` };
        }
        throw error;
      }
    },
  };
}

export const procfsCollector = createProcfsCollector();
