/**
 * The daemon (`run`) trades speed it does not need for memory (docs/performance.md, "Memory"): a
 * tick is I/O, JSON.parse and regexes (native code either way) every 15 s. No optimizing compiler
 * (TurboFan: its code pages, its working memory and optimized code, ≈ 5 MB of RSS) and V8's heap
 * grown for memory, not throughput.
 */
export const DAEMON_V8_FLAGS = "--no-opt --optimize-for-size";

/**
 * TurboFan back for basic auth: bcryptjs is JavaScript doing nothing but arithmetic, and a cost-10
 * compare takes ≈ 2.6 s of CPU under DAEMON_V8_FLAGS against ≈ 0.1 s with the optimizer (the heap
 * setting makes no difference to it, so it stays).
 */
export const OPTIMIZER_V8_FLAGS = "--opt";

/** Undoes DAEMON_V8_FLAGS for a stall guard: proxying every client's stream is a hot path. */
export const STALL_GUARD_V8_FLAGS = `${OPTIMIZER_V8_FLAGS} --no-optimize-for-size`;
