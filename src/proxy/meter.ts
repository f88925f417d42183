/**
 * Watches an answer's bytes go by without changing them: counts the streamed chunks (an NDJSON line,
 * an SSE `data:` event) and reads Ollama's final counters — `eval_count` / `prompt_eval_count` on the
 * native API, `usage` on the OpenAI-compatible one (`server/routes.go`, `openai/openai.go` ToUsage,
 * v0.20.0). Only lines that can carry counters are parsed, so a token costs a newline scan.
 * Malformed input is never an error here: the bytes are forwarded as they are, the counters stay unknown.
 */
import type { BodyFormat } from "./endpoints.js";

export interface TokenCounters {
  /** Tokens generated (eval_count, usage.completion_tokens / output_tokens). */
  generated?: number;
  /** Prompt tokens evaluated (prompt_eval_count, usage.prompt_tokens / input_tokens). */
  prompt?: number;
}

/** A partial line longer than this is not a chunk we can read (it is still forwarded). */
const MAX_LINE_BYTES = 64 * 1024;
/** A non-streamed JSON answer is read for its counters only up to this size. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;
const NEWLINE = 0x0a;
// Searched in every line: as Buffers once, not a string converted per search.
const DONE_TRUE = Buffer.from('"done":true');
const USAGE = Buffer.from('"usage":{');
const SSE_DONE = Buffer.from("[DONE]");

export class StreamMeter {
  /** Complete chunks seen (NDJSON lines, SSE data events other than `[DONE]`). */
  chunks = 0;
  readonly counters: TokenCounters = {};
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private overflow = false;

  constructor(private readonly format: BodyFormat) {}

  /** Feeds one chunk of the answer; returns how many complete chunks it finished. */
  feed(chunk: Buffer): number {
    if (this.format === "other") {
      this.keep(chunk, MAX_DOCUMENT_BYTES);
      return 0;
    }
    const before = this.chunks;
    let start = 0;
    for (let newline = chunk.indexOf(NEWLINE); newline !== -1; newline = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, newline);
      if (this.pendingBytes > 0 || this.overflow) {
        this.keep(piece, MAX_LINE_BYTES);
        if (!this.overflow) this.line(Buffer.concat(this.pending, this.pendingBytes));
        this.reset();
      } else {
        this.line(piece);
      }
      start = newline + 1;
    }
    if (start < chunk.length) this.keep(chunk.subarray(start), MAX_LINE_BYTES);
    return this.chunks - before;
  }

  /** The answer ended: a last line without a newline, or a whole JSON document, is read now. */
  end(): void {
    if (this.overflow || this.pendingBytes === 0) {
      this.reset();
      return;
    }
    const rest = Buffer.concat(this.pending, this.pendingBytes);
    this.reset();
    if (this.format === "other") this.read(rest);
    else this.line(rest);
  }

  private line(line: Buffer): void {
    if (this.format === "ndjson") {
      if (line.length === 0) return;
      this.chunks++;
      if (line.includes(DONE_TRUE)) this.read(line);
      return;
    }
    // SSE: `data: {...}`; events, comments and blank separators are not chunks.
    // "data:" by its bytes: no string per line.
    if (
      line.length < 6 ||
      line[0] !== 0x64 ||
      line[1] !== 0x61 ||
      line[2] !== 0x74 ||
      line[3] !== 0x61 ||
      line[4] !== 0x3a
    )
      return;
    const payload = line.subarray(line[5] === 0x20 ? 6 : 5);
    if (payload.equals(SSE_DONE)) return;
    this.chunks++;
    if (payload.includes(USAGE)) this.read(payload);
  }

  private read(json: Buffer): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json.toString("utf8"));
    } catch {
      return;
    }
    if (!parsed || typeof parsed !== "object") return;
    const record = parsed as Record<string, unknown>;
    setCount(this.counters, "generated", record.eval_count);
    setCount(this.counters, "prompt", record.prompt_eval_count);
    const usage = record.usage;
    if (usage && typeof usage === "object") {
      const u = usage as Record<string, unknown>;
      setCount(this.counters, "generated", u.completion_tokens ?? u.output_tokens);
      setCount(this.counters, "prompt", u.prompt_tokens ?? u.input_tokens);
    }
  }

  private keep(piece: Buffer, limit: number): void {
    if (this.overflow) return;
    if (this.pendingBytes + piece.length > limit) {
      this.overflow = true;
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    // A copy: the caller's buffer may be pooled and reused.
    this.pending.push(Buffer.from(piece));
    this.pendingBytes += piece.length;
  }

  private reset(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.overflow = false;
  }
}

function setCount(counters: TokenCounters, key: keyof TokenCounters, value: unknown): void {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) counters[key] = value;
}
