import { execArgv } from "../core/exec.js";
import type { JournalSignals } from "../core/types.js";
import type { Collector, CollectorContext } from "./collector.js";
import { describeToolFailure, isMissingProgram } from "./tool.js";

/**
 * A request as Gin logs it when its handler returns, whatever its status and whether or not the
 * client gave up first (gin.Default's Logger, server/routes.go, every tag):
 * `[GIN] 2025/10/12 - 10:43:42 | 200 |   31.16s |  127.0.0.1 | POST     "/api/generate"`.
 * Counted for the record only: the detector never takes it as progress (docs/detection.md).
 */
const GIN_LINE = /\[GIN\][^|]*\|\s*(\d{3})\s*\|[^|]*\|[^|]*\|\s*([A-Z]+)\s+"([^"]*)"/;
/** Inference endpoints. */
const INFERENCE_PATH = /^\/(api\/(generate|chat)|v1\/)/;
/**
 * Lines that say the GPU or its driver is broken: restarting Ollama does not help. Not
 * "gpu VRAM usage didn't recover within timeout": up to 0.12.5 Ollama logs it at WARN on nearly
 * every reload after a runner was killed (server/sched.go v0.12.5 waitForVRAMRecovery; DEBUG from
 * v0.12.6), and it is benign (ollama/ollama#9160).
 */
const WEDGED_GPU = /(cudart|cuda driver library) init failure|CUDA error/i;
/** Lines worth keeping as context: runner lifecycle and load timeouts (llama-server wording from 0.30). */
const NOTABLE =
  /timed out waiting for llama(-server| runner) to start|starting llama[- ]server|starting runner|llama runner started|llama-server started|(runner|llama-server) (process )?(has )?terminated|didn't recover within timeout/i;
// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes are control characters.
const ANSI_ESCAPE = /\u001b\[[0-9;]*m/g;
const MAX_LINES_KEPT = 20;
const MAX_LINE_LENGTH = 400;

/** Counts [GIN] inference lines and picks evidence out of journal messages; pure. */
export function parseJournalLines(messages: string[]): JournalSignals {
  const signals: JournalSignals = { completions: 0, wedgedGpuEvidence: [], notable: [] };
  const keep = (list: string[], line: string) => {
    if (list.length < MAX_LINES_KEPT) list.push(line.slice(0, MAX_LINE_LENGTH));
  };
  for (const raw of messages) {
    const line = raw.replace(ANSI_ESCAPE, "").trim();
    const gin = GIN_LINE.exec(line);
    if (gin) {
      const [, , method, path = ""] = gin;
      if (method === "POST" && INFERENCE_PATH.test(path)) signals.completions++;
      continue;
    }
    if (WEDGED_GPU.test(line)) keep(signals.wedgedGpuEvidence, line);
    else if (NOTABLE.test(line)) keep(signals.notable, line);
  }
  return signals;
}

/** MESSAGE is a string, or an array of bytes when it is not valid UTF-8, or null. */
function messageText(message: unknown): string | undefined {
  if (typeof message === "string") return message;
  if (Array.isArray(message) && message.every((byte) => typeof byte === "number")) {
    return Buffer.from(message as number[]).toString("utf8");
  }
  return undefined;
}

/**
 * Parses `journalctl -o json` output (one JSON object per line): the messages and the cursor of the
 * last entry. A truncated or garbled line is skipped.
 */
export function parseJournalJson(text: string): { messages: string[]; cursor?: string } {
  const messages: string[] = [];
  let cursor: string | undefined;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    let entry: { MESSAGE?: unknown; __CURSOR?: unknown };
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof entry.__CURSOR === "string") cursor = entry.__CURSOR;
    const message = messageText(entry.MESSAGE);
    if (message !== undefined) messages.push(message);
  }
  return cursor === undefined ? { messages } : { messages, cursor };
}

/** Where reading resumes: after the last entry seen, or (before any) from the time reading began. */
export type JournalPosition = { cursor: string } | { sinceEpochSeconds: number };

export function journalctlArgv(program: string, unit: string, position: JournalPosition): string[] {
  const from =
    "cursor" in position ? `--after-cursor=${position.cursor}` : `--since=@${position.sinceEpochSeconds}`;
  return [program, "-u", unit, "-o", "json", "--no-pager", from];
}

/** The unit whose journal to read: journalUnit, else the systemd restart unit; null disables it. */
export function journalUnitOf(target: CollectorContext["target"]): string | undefined {
  if (target.journalUnit === null) return undefined;
  return target.journalUnit ?? target.restart.systemd?.unit;
}

const NO_JOURNAL = /No journal files were found/i;

/**
 * Reads what the target's systemd unit logged since the previous tick. The position per target is
 * kept across ticks; the first read starts at the time of that read, so history before the
 * watchdog started (an old CUDA error) is not taken as news. Entries carry their own __CURSOR,
 * so no `--show-cursor` parsing is needed.
 */
export function createJournalCollector(
  positions = new Map<string, JournalPosition>(),
): Collector<JournalSignals> {
  return {
    name: "journal",
    async collect(ctx) {
      const unit = journalUnitOf(ctx.target);
      if (!unit) return { applies: false, reason: "target is not run by systemd and sets no journalUnit" };
      const key = `${ctx.target.name}\0${unit}`;
      const position = positions.get(key) ?? { sinceEpochSeconds: Math.floor(ctx.clock.now() / 1000) };
      positions.set(key, position);
      const program = ctx.journalctl ?? "journalctl";
      const timeoutMs = ctx.config.detection.apiTimeout;
      const result = await execArgv(journalctlArgv(program, unit, position), {
        timeoutMs,
        ...(ctx.spawn ? { spawn: ctx.spawn } : {}),
      });
      if (isMissingProgram(result)) return { applies: false, reason: `${program} not found (no systemd)` };
      if (NO_JOURNAL.test(result.stderr) && result.stdout.trim() === "") {
        return { applies: false, reason: "no systemd journal on this host" };
      }
      const failure = describeToolFailure("journalctl", result, timeoutMs);
      if (failure) {
        // A cursor can go stale (journal rotated or vacuumed): start again from now next time.
        if ("cursor" in position)
          positions.set(key, { sinceEpochSeconds: Math.floor(ctx.clock.now() / 1000) });
        throw new Error(failure);
      }
      const { messages, cursor } = parseJournalJson(result.stdout);
      if (cursor) positions.set(key, { cursor });
      return { applies: true, value: parseJournalLines(messages) };
    },
  };
}

export const journalCollector = createJournalCollector();
