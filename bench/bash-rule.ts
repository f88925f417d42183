/**
 * The seed's hand-written bash monitor, reimplemented faithfully as the reference the watchdog is
 * measured against. Its loop, in the bash it stands for:
 *
 *   while true; do
 *     util=$(nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits | head -1)
 *     if [ "$util" -lt 5 ] && no_request_for 180; then        # requests: Ollama's [GIN] log lines
 *       if [ $(restarts_in_last 3600) -lt 3 ] && [ $((now - last_restart)) -ge 60 ]; then
 *         systemctl restart ollama; last_restart=$now
 *       fi
 *     fi
 *     sleep 15
 *   done
 *
 * Faithful in its failure modes too: nvidia-smi is run with no timeout (a hanging tool hangs the
 * loop), a utilization that is not an integer ("[N/A]", empty) makes `[ -lt ]` fail so nothing
 * happens, and a restart does not count as a request (after one, the rule fires again once the
 * cooldown passes if nothing else changed). Requests are the [GIN] lines Ollama writes when a
 * request completes, so a request that hangs is never seen. Before the first request the idle
 * time counts from the rule's own start (kinder than `journalctl --since -180s`, which would see
 * an empty window at once).
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { BashTimings } from "./lib/scale.js";

export interface BashRuleOptions {
  timings: BashTimings;
  nvidiaSmi: string;
  restartArgv: string[];
  /** performance.now() of the last completed request, undefined before any. */
  lastRequestAt(): number | undefined;
  onRestart?(at: number, reason: string): void;
}

export interface BashRestart {
  at: number;
  reason: string;
  exitCode: number | null;
}

export class BashRule {
  readonly restarts: BashRestart[] = [];
  /** Loop iterations that finished (a hung nvidia-smi stops them). */
  iterations = 0;
  /** Set while the loop waits on nvidia-smi. */
  private child: ChildProcess | undefined;
  private stopped = false;
  private readonly startedAt = performance.now();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: BashRuleOptions) {}

  start(): this {
    this.loop = this.run();
    return this;
  }

  /** True when the loop has been stuck on one nvidia-smi call for longer than `ms`. */
  hungFor(ms: number): boolean {
    return this.callStartedAt !== undefined && performance.now() - this.callStartedAt > ms;
  }

  private callStartedAt: number | undefined;

  async stop(): Promise<void> {
    this.stopped = true;
    this.child?.kill("SIGKILL");
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const t = this.options.timings;
    while (!this.stopped) {
      const util = await this.gpuUtilization();
      if (this.stopped) return;
      const now = performance.now();
      const idleMs = now - (this.options.lastRequestAt() ?? this.startedAt);
      if (util !== undefined && util < t.gpuBelowPercent && idleMs >= t.idle) {
        const recent = this.restarts.filter((r) => now - r.at < t.window);
        const last = this.restarts.at(-1);
        if (recent.length < t.maxRestarts && (!last || now - last.at >= t.cooldown)) {
          const reason = `GPU ${util} % < ${t.gpuBelowPercent} %, no request for ${Math.round(idleMs)} ms`;
          this.options.onRestart?.(now, reason);
          const exitCode = await this.exec(this.options.restartArgv);
          this.restarts.push({ at: now, reason, exitCode });
        }
      }
      this.iterations++;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, t.interval);
      });
    }
  }

  /** `nvidia-smi … | head -1` as an integer; undefined when bash's `-lt` would fail on it. */
  private async gpuUtilization(): Promise<number | undefined> {
    this.callStartedAt = performance.now();
    const out = await new Promise<string>((resolve) => {
      let text = "";
      const child = spawn(
        this.options.nvidiaSmi,
        ["--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
        { stdio: ["ignore", "pipe", "ignore"] },
      );
      this.child = child;
      child.stdout.on("data", (chunk: Buffer) => {
        text += chunk.toString();
      });
      child.once("error", () => resolve(""));
      child.once("close", () => resolve(text));
    });
    this.child = undefined;
    this.callStartedAt = undefined;
    const first = out.split("\n")[0]?.trim() ?? "";
    return /^\d+$/.test(first) ? Number(first) : undefined;
  }

  private exec(argv: string[]): Promise<number | null> {
    return new Promise((resolve) => {
      const child = spawn(argv[0] as string, argv.slice(1), { stdio: "ignore" });
      child.once("error", () => resolve(null));
      child.once("close", (code) => resolve(code));
    });
  }
}
