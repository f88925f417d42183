import { execFileSync } from "node:child_process";
import {
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createProcfsCollector,
  ProcessScanner,
  parseCmdline,
  parseRunnerArgs,
  parseStat,
} from "../../../src/collectors/procfs.js";
import { scratchDir, testContext } from "./support.js";

interface FakeProcess {
  pid: number;
  comm: string;
  state?: string;
  ppid?: number;
  utime?: number;
  stime?: number;
  start?: number;
  argv?: string[];
  rssKb?: number;
  /** Listens on this TCP port (its net/tcp has the socket, its fd 3 is the socket). */
  listen?: number;
  /** Its fds cannot be listed (another user's process, no ptrace access). */
  fdHidden?: boolean;
  uid?: number;
}

function statLine(p: FakeProcess): string {
  // Fields 3..24 of proc(5): state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
  // utime stime cutime cstime priority nice num_threads itrealvalue starttime vsize rss, then more.
  const fields = [p.state ?? "S", p.ppid ?? 1, p.pid, p.pid, 0, -1, 4194560, 1200, 0, 3, 0];
  fields.push(p.utime ?? 0, p.stime ?? 0, 0, 0, 20, 0, 4, 0, p.start ?? 5000, 1_000_000, 100);
  return `${p.pid} (${p.comm}) ${fields.join(" ")} 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n`;
}

function writeProcess(
  root: string,
  p: FakeProcess,
  parts = { stat: true, cmdline: true, status: true },
): void {
  const dir = join(root, String(p.pid));
  mkdirSync(dir, { recursive: true });
  if (parts.stat) writeFileSync(join(dir, "stat"), statLine(p));
  if (parts.cmdline) writeFileSync(join(dir, "cmdline"), p.argv?.length ? `${p.argv.join("\0")}\0` : "");
  if (parts.status) {
    const rss = p.rssKb === undefined ? "" : `VmRSS:\t${String(p.rssKb).padStart(8)} kB\n`;
    const uid = p.uid ?? 0;
    writeFileSync(
      join(dir, "status"),
      `Name:\t${p.comm}\nState:\t${p.state ?? "S"}\nPid:\t${p.pid}\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\n${rss}Threads:\t4\n`,
    );
  }
  if (p.listen !== undefined) {
    const inode = String(70_000 + p.pid);
    const port = p.listen.toString(16).toUpperCase().padStart(4, "0");
    mkdirSync(join(dir, "net"), { recursive: true });
    writeFileSync(
      join(dir, "net", "tcp"),
      [
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
        `   0: 0100007F:${port} 00000000:0000 0A 00000000:00000000 00:00000000 00000000   ${p.uid ?? 0}        0 ${inode} 1 0000000000000000 100 0 0 10 0`,
        `   1: 0100007F:${port} 0100007F:D3A2 01 00000000:00000000 00:00000000 00000000   ${p.uid ?? 0}        0 ${Number(inode) + 1} 1 0000000000000000 20 4 30 10 -1`,
        "",
      ].join("\n"),
    );
    writeFileSync(
      join(dir, "net", "tcp6"),
      "  sl  local_address remote_address st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
    );
    if (!p.fdHidden) {
      mkdirSync(join(dir, "fd"), { recursive: true });
      symlinkSync("/dev/null", join(dir, "fd", "0"));
      symlinkSync(`socket:[${inode}]`, join(dir, "fd", "3"));
    }
  }
}

const MODELS = "/usr/share/ollama/.ollama/models/blobs";
const PORT = 11434;
const patterns = {
  server: /ollama serve/,
  runner: /ollama runner|ollama_llama_server|llama-server/,
  placement: { local: true as const, port: PORT },
};

const SERVER: FakeProcess = {
  pid: 1187,
  comm: "ollama",
  listen: PORT,
  argv: ["/usr/local/bin/ollama", "serve"],
  utime: 950,
  stime: 50,
  rssKb: 512_000,
};
const RUNNER_OLD: FakeProcess = {
  pid: 2301,
  comm: "ollama_llama_se",
  ppid: 1187,
  state: "R",
  utime: 1234,
  stime: 766,
  start: 123_456,
  rssKb: 4_194_304,
  argv: [
    "/tmp/ollama3178249/runners/cuda_v12/ollama_llama_server",
    "--model",
    `${MODELS}/sha256-aaa`,
    "--ctx-size",
    "8192",
    "--batch-size",
    "512",
    "--n-gpu-layers",
    "33",
    "--threads",
    "8",
    "--parallel",
    "4",
    "--port",
    "41879",
  ],
};
const RUNNER_ENGINE: FakeProcess = {
  pid: 2302,
  comm: "ollama",
  ppid: 1187,
  state: "D",
  argv: [
    "/usr/local/bin/ollama",
    "runner",
    "--ollama-engine",
    "--model",
    `${MODELS}/sha256-bbb`,
    "--port",
    "40117",
  ],
};
const RUNNER_LLAMA_SERVER: FakeProcess = {
  pid: 2303,
  comm: "llama-server",
  ppid: 1187,
  argv: ["/usr/lib/ollama/llama-server", `--model=${MODELS}/sha256-ccc`, "--port", "39211"],
};
const ZOMBIE_RUNNER: FakeProcess = { pid: 2304, comm: "ollama", ppid: 1187, state: "Z", argv: [] };
const BROWSER: FakeProcess = {
  pid: 3100,
  comm: "Web Content",
  argv: ["/usr/lib/firefox/firefox", "-contentproc"],
};
const TRICKY: FakeProcess = { pid: 3101, comm: "a) R 1 (b", argv: ["./a) R 1 (b"] };
const KERNEL_THREAD: FakeProcess = { pid: 12, comm: "kworker/0:1-events", state: "I", ppid: 2, argv: [] };

let root: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir: root, cleanup } = scratchDir("proc"));
});
afterEach(() => cleanup());

describe("parseStat", () => {
  it("reads state, ppid, CPU ticks and start time", () => {
    expect(parseStat(statLine(RUNNER_OLD))).toEqual({
      pid: 2301,
      comm: "ollama_llama_se",
      state: "R",
      ppid: 1187,
      utimeTicks: 1234,
      stimeTicks: 766,
      startTicks: 123_456,
    });
  });

  it("is robust to spaces and parentheses in comm", () => {
    expect(parseStat(statLine(BROWSER))).toMatchObject({ comm: "Web Content", state: "S", ppid: 1 });
    expect(parseStat(statLine(TRICKY))).toMatchObject({ pid: 3101, comm: "a) R 1 (b", state: "S", ppid: 1 });
    expect(parseStat(statLine({ pid: 7, comm: "(sd-pam)", state: "S" }))).toMatchObject({ comm: "(sd-pam)" });
  });

  it("rejects what is not a stat line", () => {
    expect(parseStat("")).toBeUndefined();
    expect(parseStat("1234 (trunc")).toBeUndefined();
    expect(parseStat("1234 (x) S")).toBeUndefined();
  });

  it("reads this very process from the real procfs", () => {
    expect(parseStat(readFileSync("/proc/self/stat", "utf8"))).toMatchObject({
      pid: process.pid,
      state: "R",
    });
  });
});

describe("small parsers", () => {
  it("cmdline: NUL-separated, trailing NUL, empty for zombies", () => {
    expect(parseCmdline("/usr/local/bin/ollama\0serve\0")).toEqual(["/usr/local/bin/ollama", "serve"]);
    expect(parseCmdline("a\0\0b\0")).toEqual(["a", "", "b"]);
    expect(parseCmdline("")).toEqual([]);
  });

  it("runner args of all three generations", () => {
    expect(parseRunnerArgs(RUNNER_OLD.argv ?? [])).toEqual({
      modelPath: `${MODELS}/sha256-aaa`,
      port: 41879,
    });
    expect(parseRunnerArgs(RUNNER_ENGINE.argv ?? [])).toEqual({
      modelPath: `${MODELS}/sha256-bbb`,
      port: 40117,
    });
    expect(parseRunnerArgs(RUNNER_LLAMA_SERVER.argv ?? [])).toEqual({
      modelPath: `${MODELS}/sha256-ccc`,
      port: 39211,
    });
    expect(parseRunnerArgs(["ollama", "runner", "--port", "notaport"])).toEqual({});
  });
});

describe("process scan", () => {
  const everyone = [
    SERVER,
    RUNNER_OLD,
    RUNNER_ENGINE,
    RUNNER_LLAMA_SERVER,
    ZOMBIE_RUNNER,
    BROWSER,
    TRICKY,
    KERNEL_THREAD,
  ];

  it("finds the server and the runners of the three generations, zombie included", async () => {
    for (const p of everyone) writeProcess(root, p);
    mkdirSync(join(root, "self"));
    writeFileSync(join(root, "uptime"), "1000.00 2000.00\n");

    const { server, runners } = await new ProcessScanner().scan(root, patterns);

    expect(server).toEqual([
      {
        pid: 1187,
        ppid: 1,
        cmdline: "/usr/local/bin/ollama serve",
        state: "S",
        cpuSeconds: 10,
        startSeconds: 50,
      },
    ]);
    expect(runners.map((r) => r.pid).sort()).toEqual([2301, 2302, 2303, 2304]);
    const byPid = new Map(runners.map((r) => [r.pid, r]));
    expect(byPid.get(2301)).toEqual({
      pid: 2301,
      ppid: 1187,
      cmdline: (RUNNER_OLD.argv ?? []).join(" "),
      state: "R",
      cpuSeconds: 20,
      startSeconds: 1234.56,
      modelPath: `${MODELS}/sha256-aaa`,
      port: 41879,
    });
    expect(byPid.get(2302)).toMatchObject({ state: "D", port: 40117, modelPath: `${MODELS}/sha256-bbb` });
    expect(byPid.get(2303)).toMatchObject({ port: 39211 });
    expect(byPid.get(2304)).toMatchObject({ state: "Z", cmdline: "" });
  });

  it("skips pids that vanish mid-scan", async () => {
    writeProcess(root, SERVER);
    writeProcess(root, RUNNER_OLD, { stat: true, cmdline: false, status: false });
    writeProcess(root, { ...RUNNER_ENGINE, state: "S" }, { stat: false, cmdline: true, status: false });
    writeProcess(root, RUNNER_LLAMA_SERVER, { stat: true, cmdline: true, status: false });
    const { server, runners } = await new ProcessScanner().scan(root, patterns);
    expect(server).toHaveLength(1);
    expect(runners).toEqual([expect.objectContaining({ pid: 2303, port: 39211 })]);
  });

  it("reads a command line once per process, again when its title (comm) changes", async () => {
    const starting = { pid: 4000, comm: "node", ppid: 1187, argv: ["node", "/opt/sim/runner.js"] };
    writeProcess(root, SERVER);
    writeProcess(root, starting);
    const scanner = new ProcessScanner();
    expect((await scanner.scan(root, patterns)).runners).toEqual([]);
    // The process renames itself (process.title): argv and comm change together.
    writeProcess(root, {
      ...starting,
      comm: "ollama",
      argv: ["ollama", "runner", "--model", "/m", "--port", "1"],
    });
    expect((await scanner.scan(root, patterns)).runners.map((r) => r.cmdline)).toEqual([
      "ollama runner --model /m --port 1",
    ]);
    // Unchanged comm: the cached argv stands (no read per process per tick).
    writeFileSync(join(root, "4000", "cmdline"), "something else\0");
    expect((await scanner.scan(root, patterns)).runners.map((r) => r.pid)).toEqual([4000]);
  });

  it("parses --model and --port of a runner that renamed itself (one space-joined, NUL-padded argv)", async () => {
    writeProcess(root, SERVER);
    mkdirSync(join(root, "4100"), { recursive: true });
    writeFileSync(join(root, "4100", "stat"), statLine({ pid: 4100, comm: "ollama", ppid: 1187 }));
    writeFileSync(
      join(root, "4100", "cmdline"),
      "ollama runner --model /m/blobs/sha256-00aa --port 4242\0\0\0\0",
    );
    const { runners } = await new ProcessScanner().scan(root, patterns);
    expect(runners).toEqual([
      expect.objectContaining({ pid: 4100, modelPath: "/m/blobs/sha256-00aa", port: 4242 }),
    ]);
  });

  it("answers concurrent scans (one per target, same tick) completely and alike", async () => {
    for (const p of everyone) writeProcess(root, p);
    const scanner = new ProcessScanner();
    const [a, b] = await Promise.all([scanner.scan(root, patterns), scanner.scan(root, patterns)]);
    expect(a).toEqual(b);
    expect(a.runners.length).toBe(4);
  });

  // Another Ollama on the same host (not configured): its server on 11500, its runner a child of it.
  const OTHER_SERVER: FakeProcess = {
    pid: 5100,
    comm: "ollama",
    listen: 11500,
    argv: ["/opt/other/ollama", "serve"],
  };
  const OTHER_RUNNER: FakeProcess = {
    pid: 5101,
    comm: "ollama",
    ppid: 5100,
    argv: ["/opt/other/ollama", "runner", "--model", "/other/blobs/sha256-fff", "--port", "40999"],
  };

  it("the server is the process listening on the target's port: another Ollama's runners are not ours", async () => {
    for (const p of [SERVER, RUNNER_ENGINE, OTHER_SERVER, OTHER_RUNNER]) writeProcess(root, p);
    const ours = await new ProcessScanner().scan(root, patterns);
    expect(ours.unproven).toBeUndefined();
    expect(ours.server.map((p) => p.pid)).toEqual([1187]);
    expect(ours.runners.map((p) => p.pid)).toEqual([2302]);
    const theirs = await new ProcessScanner().scan(root, {
      ...patterns,
      placement: { local: true, port: 11500 },
    });
    expect(theirs.server.map((p) => p.pid)).toEqual([5100]);
    expect(theirs.runners.map((p) => p.pid)).toEqual([5101]);
  });

  it("nothing provably ours (no server listens on the port): unproven, and it says why", async () => {
    for (const p of [{ ...SERVER, listen: undefined }, RUNNER_ENGINE, OTHER_SERVER, OTHER_RUNNER])
      writeProcess(root, p);
    const view = await new ProcessScanner().scan(root, patterns);
    expect(view.unproven).toMatch(/none of the server candidates \(.*\) listens on port 11434/);
  });

  it("a remote target: unproven, never our processes", async () => {
    for (const p of everyone) writeProcess(root, p);
    const view = await new ProcessScanner().scan(root, {
      ...patterns,
      placement: { local: false, host: "gpu-box" },
    });
    expect(view.unproven).toMatch(/gpu-box is not this host/);
  });

  it("GPU discovery children (no --model) are not runners; a renamed server is found as the parent of model runners", async () => {
    const renamed: FakeProcess = { ...SERVER, argv: ["/opt/ai/bin/ai-serverd"], comm: "ai-serverd" };
    const discovery: FakeProcess = {
      pid: 2310,
      comm: "ollama",
      ppid: 1187,
      argv: ["/usr/local/bin/ollama", "runner", "--ollama-engine", "--port", "40201"],
    };
    const modelLessLlamaServer: FakeProcess = {
      pid: 2311,
      comm: "llama-server",
      ppid: 1187,
      argv: ["/usr/lib/ollama/llama-server", "--port", "40202", "--list-devices"],
    };
    const renamedRunner: FakeProcess = {
      pid: 2312,
      comm: "ai-worker",
      ppid: 1187,
      argv: ["/opt/ai/lib/ai-worker", "--model", `${MODELS}/sha256-ddd`, "--port", "40203"],
    };
    for (const p of [renamed, discovery, modelLessLlamaServer, renamedRunner]) writeProcess(root, p);
    const view = await new ProcessScanner().scan(root, patterns);
    expect(view.server.map((p) => p.pid)).toEqual([1187]);
    expect(view.runners.map((p) => p.pid)).toEqual([2312]);
  });

  it("fds unreadable (another user): proven by the socket's uid when one candidate has it; two: unproven", async () => {
    const hidden: FakeProcess = { ...SERVER, fdHidden: true, uid: 998 };
    writeProcess(root, hidden);
    writeProcess(root, RUNNER_ENGINE);
    expect((await new ProcessScanner().scan(root, patterns)).server.map((p) => p.pid)).toEqual([1187]);
    // A second server of the same user in the same namespace: the table shows one socket of uid 998.
    writeProcess(root, { ...OTHER_SERVER, fdHidden: true, uid: 998, listen: PORT });
    const view = await new ProcessScanner().scan(root, patterns);
    expect(view.unproven).toMatch(/2 processes of uid 998 could be the one listening on port 11434/);
  });

  describe("a process in D state whose cmdline read blocks (a FIFO stands in for the held mmap lock)", () => {
    const fifos: string[] = [];
    afterEach(() => {
      // Unblock the stuck reads so no libuv thread stays tied up after the test.
      for (const fifo of fifos.splice(0)) {
        try {
          const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
          writeSync(fd, "x\0");
          closeSync(fd);
        } catch {
          // No reader left: nothing to unblock.
        }
      }
    });

    function blockCmdline(pid: number): void {
      const path = join(root, String(pid), "cmdline");
      rmSync(path, { force: true });
      execFileSync("mkfifo", [path]);
      fifos.push(path);
    }

    it("does not wait for it, still counts it as the server's runner, and starts no second read", async () => {
      writeProcess(root, SERVER);
      writeProcess(root, RUNNER_ENGINE);
      blockCmdline(RUNNER_ENGINE.pid);
      const scanner = new ProcessScanner();
      const started = performance.now();
      const first = await scanner.scan(root, patterns);
      expect(performance.now() - started).toBeLessThan(2000);
      expect(first.runners).toEqual([expect.objectContaining({ pid: 2302, state: "D", cmdline: "" })]);
      const second = await scanner.scan(root, patterns);
      expect(second.runners.map((r) => r.pid)).toEqual([2302]);
    });

    it("reuses the cmdline read while the process was still healthy", async () => {
      writeProcess(root, SERVER);
      writeProcess(root, { ...RUNNER_ENGINE, state: "S" });
      const scanner = new ProcessScanner();
      await scanner.scan(root, patterns);
      writeProcess(root, RUNNER_ENGINE, { stat: true, cmdline: false, status: false });
      blockCmdline(RUNNER_ENGINE.pid);
      const { runners } = await scanner.scan(root, patterns);
      expect(runners).toEqual([
        expect.objectContaining({
          pid: 2302,
          state: "D",
          cmdline: (RUNNER_ENGINE.argv ?? []).join(" "),
          port: 40117,
        }),
      ]);
    });
  });
});

describe("procfs collector", () => {
  it("reads procRoot from the context", async () => {
    writeProcess(root, SERVER);
    writeProcess(root, RUNNER_ENGINE);
    const output = await createProcfsCollector(new ProcessScanner()).collect(testContext({ procRoot: root }));
    expect(output.applies && output.value.runners.map((r) => r.pid)).toEqual([2302]);
  });

  it("no procfs (macOS, Windows) does not apply", async () => {
    const output = await createProcfsCollector(new ProcessScanner()).collect(
      testContext({ procRoot: join(root, "missing") }),
    );
    expect(output).toEqual({ applies: false, reason: expect.stringContaining("no procfs") });
  });
});
