import { join } from "node:path";
import type { ProcessSample, ProcessView } from "../core/types.js";
import type { Collector } from "./collector.js";
import { holdsSocket, listenersOn, type Placement, parseStatusUid, placementOf } from "./listener.js";
import { ProcReadError, readProcDir, readProcFile, readProcFileAside } from "./proc-read.js";

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

/** A command line and what every target's scan asks of it, worked out once per process. */
interface CommandLine {
  /** Its arguments joined by spaces: what `processes.server` / `processes.runner` match. */
  text: string;
  /** `--model` and `--port`, when it has them. */
  runner: { modelPath?: string; port?: number };
}

function commandLine(argv: string[]): CommandLine {
  return { text: argv.join(" ").trim(), runner: parseRunnerArgs(runnerArgv(argv)) };
}

interface ScannedProcess {
  stat: ProcStat;
  /** undefined when it could not be read in time (a process in D state can block the read). */
  command: CommandLine | undefined;
}

/** How long a cmdline read of a process in D state may take before the scan goes on without it. */
const STUCK_READ_MS = 250;
/** A candidate that did not listen on the port is asked again after this long. */
const RECHECK_NOT_LISTENING_MS = 30_000;

/** Which processes the scan looks for, and where the target's server listens. */
export interface ScanTarget {
  server: RegExp;
  runner: RegExp;
  placement: Placement;
}

/** A runner serves a model: it names the weights (`--model`). GPU discovery children do not. */
function servesModel(process: ScannedProcess): boolean {
  return process.command?.runner.modelPath !== undefined;
}

/**
 * Scans procfs for the target's server and its runners. The server is the process that listens
 * on the target's port (listener.ts): a process matching `processes.server`, or the parent of a
 * process serving a model (a renamed or wrapped binary). Its runners are its children that serve a
 * model: `ollama runner`, `ollama_llama_server`, `llama-server` or any other name; a child started
 * for GPU discovery (`ollama runner --ollama-engine --port N`, a model-less `llama-server`) is not
 * a runner. A child whose argv cannot be read (a zombie, or stuck in D state) still counts.
 *
 * When the server cannot be proven, `unproven` says why and the lists hold what the patterns
 * matched (for observation only: the detector never kills a runner it could not attribute).
 *
 * State kept across scans: argv per process (a read of /proc/<pid>/cmdline blocks on a D-state
 * process: its argv is read once, and never again while a read is stuck: proc-read.ts), and which
 * candidates listen on which port.
 */
export class ProcessScanner {
  private readonly argvCache = new Map<string, CommandLine>();
  /** The walk in progress per procfs root: targets scanning in the same tick share one walk. */
  private readonly walks = new Map<string, Promise<ScannedProcess[]>>();
  /** Per process key and port: how it was proven the listener, or when it was seen not to be. */
  private readonly listening = new Map<
    string,
    { proof: "socket" | "uid" | "no"; mono: number; uid?: number }
  >();

  async scan(procRoot: string, target: ScanTarget): Promise<ProcessView> {
    const scanned = await this.walk(procRoot);
    const text = (process: ScannedProcess) => process.command?.text ?? "";
    const byPid = new Map(scanned.map((p) => [p.stat.pid, p]));
    const patternServers = scanned.filter(
      (p) => p.command && target.server.test(p.command.text) && !target.runner.test(p.command.text),
    );
    const samples = (list: ScannedProcess[]) => list.map((p) => this.sample(p));
    const childrenOf = (servers: ScannedProcess[], owned: (p: ScannedProcess) => boolean) => {
      const pids = new Set(servers.map((p) => p.stat.pid));
      return scanned.filter((p) => pids.has(p.stat.ppid) && owned(p));
    };
    const unprovable = (why: string): ProcessView => {
      const patternRunners = scanned.filter(
        (p) => p.command && target.runner.test(p.command.text) && servesModel(p),
      );
      return { server: samples(patternServers), runners: samples(patternRunners), unproven: why };
    };

    if (!target.placement.local) {
      return unprovable(
        `the target's host ${target.placement.host} is not this host: its processes are not ours to signal`,
      );
    }
    const port = target.placement.port;
    const candidates = new Map<number, ScannedProcess>(patternServers.map((p) => [p.stat.pid, p]));
    for (const p of scanned) {
      const parent = byPid.get(p.stat.ppid);
      if (parent && p.stat.ppid > 1 && servesModel(p)) candidates.set(parent.stat.pid, parent);
    }
    const proofs = await Promise.all(
      [...candidates.values()].map(async (p) => ({
        process: p,
        ...(await this.listensOn(procRoot, p, port)),
      })),
    );
    let servers = proofs.filter((p) => p.proof === "socket").map((p) => p.process);
    if (servers.length === 0) {
      const byUid = proofs.filter((p) => p.proof === "uid");
      if (byUid.length === 1) servers = [byUid[0]?.process as ScannedProcess];
      else if (byUid.length > 1) {
        return unprovable(
          `${byUid.length} processes of uid ${byUid[0]?.uid} could be the one listening on port ${port} (${byUid.map((p) => p.process.stat.pid).join(", ")}): cannot tell which`,
        );
      }
    }
    if (servers.length === 0) {
      return unprovable(
        candidates.size === 0
          ? `no server process found (processes.server /${target.server.source}/, or a parent of a process serving a model)`
          : `none of the server candidates (${[...candidates.keys()].join(", ")}) listens on port ${port} in its network namespace`,
      );
    }
    const runners = childrenOf(servers, (p) => servesModel(p) || !text(p));
    return { server: samples(servers), runners: samples(runners) };
  }

  /** Whether the process listens on the port: proven by its socket, by uid only, or not. */
  private async listensOn(
    procRoot: string,
    process: ScannedProcess,
    port: number,
  ): Promise<{ proof: "socket" | "uid" | "no"; uid?: number }> {
    const key = `${this.key(procRoot, process.stat)}\0${port}`;
    const known = this.listening.get(key);
    const now = performance.now();
    if (known && (known.proof !== "no" || now - known.mono < RECHECK_NOT_LISTENING_MS)) return known;
    const remember = (proof: "socket" | "uid" | "no", uid?: number) => {
      const entry = { proof, mono: now, ...(uid === undefined ? {} : { uid }) };
      this.listening.set(key, entry);
      return entry;
    };
    const sockets = await listenersOn(procRoot, process.stat.pid, port);
    if (sockets.length === 0) return remember("no");
    const held = await holdsSocket(procRoot, process.stat.pid, new Set(sockets.map((s) => s.inode)));
    if (held === true) return remember("socket");
    if (held === false) return remember("no");
    const uid = await readProcFile(join(procRoot, String(process.stat.pid), "status"))
      .then(parseStatusUid)
      .catch(() => undefined);
    const owned = uid !== undefined && sockets.some((s) => s.uid === uid);
    return owned ? remember("uid", uid) : remember("no");
  }

  /**
   * One pass over procfs: stat of every process, its command line from the cache where the process
   * is known (read and parsed once, then shared by every target's scan).
   * Concurrent callers (one per target, all in the same tick) share the pass in progress.
   */
  private walk(procRoot: string): Promise<ScannedProcess[]> {
    const inProgress = this.walks.get(procRoot);
    if (inProgress) return inProgress;
    const walk = (async () => {
      const entries = await readProcDir(procRoot);
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
      const stat = parseStat(await readProcFile(join(procRoot, pid, "stat")));
      if (!stat) return undefined;
      return { stat, command: await this.readCommand(procRoot, stat) };
    } catch {
      // Vanished mid-scan (ENOENT/ESRCH), unreadable (hidepid) or stuck: not one we can judge.
      return undefined;
    }
  }

  private async readCommand(procRoot: string, stat: ProcStat): Promise<CommandLine | undefined> {
    const key = this.key(procRoot, stat);
    const cached = this.argvCache.get(key);
    if (cached) return cached;
    const path = join(procRoot, String(stat.pid), "cmdline");
    try {
      const raw =
        stat.state === "D" ? await readProcFileAside(path, STUCK_READ_MS) : await readProcFile(path);
      const command = commandLine(parseCmdline(raw));
      this.argvCache.set(key, command);
      return command;
    } catch (error) {
      if (stat.state === "D" || error instanceof ProcReadError) return undefined;
      throw error;
    }
  }

  private forgetExcept(procRoot: string, alive: ScannedProcess[]): void {
    const keep = new Set(alive.map((p) => this.key(procRoot, p.stat)));
    for (const key of this.argvCache.keys()) {
      if (key.startsWith(`${procRoot}\0`) && !keep.has(key)) this.argvCache.delete(key);
    }
    for (const key of this.listening.keys()) {
      if (key.startsWith(`${procRoot}\0`) && !keep.has(key.slice(0, key.lastIndexOf("\0"))))
        this.listening.delete(key);
    }
  }

  /** A process as the detector sees it, from what the walk already read. */
  private sample(process: ScannedProcess): ProcessSample {
    const { stat, command } = process;
    return {
      pid: stat.pid,
      ppid: stat.ppid,
      cmdline: command?.text ?? "",
      state: stat.state,
      cpuSeconds: (stat.utimeTicks + stat.stimeTicks) / CLK_TCK,
      startSeconds: stat.startTicks / CLK_TCK,
      ...command?.runner,
    };
  }
}

const sharedScanner = new ProcessScanner();

/** The target's server and runners (see ProcessScanner). */
export function createProcfsCollector(scanner: ProcessScanner = sharedScanner): Collector<ProcessView> {
  return {
    name: "procfs",
    async collect(ctx) {
      const target: ScanTarget = {
        server: new RegExp(ctx.target.processes.server),
        runner: new RegExp(ctx.target.processes.runner),
        placement: placementOf(ctx.target.url),
      };
      try {
        return { applies: true, value: await scanner.scan(ctx.procRoot, target) };
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
