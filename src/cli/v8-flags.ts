/**
 * The daemon (`run`) trades speed it does not need for memory (docs/performance.md, "Memory"): a
 * tick is I/O, JSON.parse and regexes (native code either way) every 15 s. No optimizing compiler
 * (TurboFan: its code pages, its working memory and optimized code, ≈ 5 MB of RSS) and V8's heap
 * grown for memory, not throughput.
 */
export const DAEMON_V8_FLAGS = "--no-opt --optimize-for-size";

/** Undoes DAEMON_V8_FLAGS for a stall guard: proxying every client's stream is a hot path. */
export const STALL_GUARD_V8_FLAGS = "--opt --no-optimize-for-size";
