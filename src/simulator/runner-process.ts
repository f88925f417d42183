/**
 * A model runner: the child process the simulator starts per loaded model. Its command line reads
 * like the profile's (`ollama runner --model …/blobs/sha256-… --port N`, `…/llama-server --model …`),
 * it burns CPU per generated token and none when idle, and it can be told to deadlock, spin or
 * stall. SIGSTOP and SIGKILL act on it for real. Started without `--model` it is a GPU-discovery
 * child: it lives briefly and exits.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import {
  type CompletionLine,
  type CompletionRequest,
  DISCOVERY_MS_ENV,
  RUNNER_CONFIG_ENV,
  RUNNER_PROGRAM_ENV,
  type RunnerConfig,
  type RunnerMode,
} from "./runner-protocol.js";
import { Wakeup } from "./wakeup.js";
import { tokenText } from "./wire.js";

const argv = process.argv.slice(2).filter((arg) => !arg.startsWith("--sim-title-room="));
const argValue = (flag: string) => {
  const index = argv.indexOf(flag);
  return index >= 0 ? argv[index + 1] : undefined;
};
const port = Number(argValue("--port"));
const config = JSON.parse(process.env[RUNNER_CONFIG_ENV] ?? "{}") as RunnerConfig;

// The original argv (node + script path + these args + padding) is longer than the title, so it fits.
process.title = [process.env[RUNNER_PROGRAM_ENV] ?? "ollama", ...argv].join(" ");

const discoveryMs = process.env[DISCOVERY_MS_ENV];
if (discoveryMs !== undefined) {
  // A GPU-discovery child reports the devices and is stopped (discover/runner.go, discover/llama_server.go).
  setTimeout(() => process.exit(0), Number(discoveryMs));
  process.on("disconnect", () => process.exit(0));
}

let mode: RunnerMode = config.mode ?? { kind: "normal" };
let loaded = false;
/** Wakes blocked generations (mode changed, or a client went away) so they re-check. */
const wakeup = new Wakeup();
/** Generations currently allowed more tokens under `stall`. */
const stallBudget = new Map<symbol, number>();

function setMode(next: RunnerMode): void {
  mode = next;
  stallBudget.clear();
  wakeup.wakeAll();
  if (mode.kind === "spin") void spin();
}

function burnCpu(ms: number): void {
  const end = performance.now() + ms;
  let x = 1;
  while (performance.now() < end) x = Math.sqrt(x + 1.000001);
}

/** A busy loop that never produces a token, yielding now and then so /mode can end it. */
async function spin(): Promise<void> {
  while (mode.kind === "spin") {
    burnCpu(50);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Waits until this generation may produce its next token (forever under deadlock/spin/wedged). */
async function mayProceed(id: symbol, closed: () => boolean): Promise<boolean> {
  for (;;) {
    if (closed()) return false;
    if (mode.kind === "normal") return true;
    if (mode.kind === "stall") {
      const left = stallBudget.get(id) ?? mode.afterTokens;
      if (left > 0) {
        stallBudget.set(id, left - 1);
        return true;
      }
    }
    await wakeup.next();
  }
}

/**
 * Prompt processing runs in the same batch loop as token generation, and an embedding is nothing
 * else (runner/llamarunner/runner.go v0.12.5: `embeddings` waits on `<-seq.embedding`, filled by
 * processBatch in `run`): a deadlocked, spinning or wedged runner never gets through it. A `stall`
 * stops later, mid-stream.
 */
async function promptProcessed(closed: () => boolean): Promise<boolean> {
  for (;;) {
    if (closed()) return false;
    if (mode.kind === "normal" || mode.kind === "stall") return true;
    await wakeup.next();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The text of chunk i of an answer in this style. */
function chunkText(style: CompletionRequest["style"], index: number): string {
  if (style === "degenerate") return "G".repeat(1 + (index % 3));
  if (style === "degenerate-same") return "G";
  return tokenText(index);
}

async function complete(
  request: CompletionRequest,
  res: ServerResponse,
  closed: () => boolean,
): Promise<void> {
  const id = Symbol("generation");
  if (mode.kind === "wedged") process.stderr.write("CUDA error: unspecified launch failure\n");
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  const style = request.style ?? "normal";
  const wanted =
    style === "empty" ? 0 : style.startsWith("degenerate") ? Number.POSITIVE_INFINITY : request.tokens;
  try {
    if (!(await promptProcessed(closed))) return;
    let produced = 0;
    while (produced < wanted) {
      if (!(await mayProceed(id, closed))) return;
      const started = performance.now();
      burnCpu(Math.min(config.cpuMsPerToken, config.tokenIntervalMs));
      const line: CompletionLine = { content: chunkText(style, produced) };
      res.write(`${JSON.stringify(line)}\n`);
      produced++;
      const rest = config.tokenIntervalMs - (performance.now() - started);
      if (rest > 0) await sleep(rest);
    }
    const last: CompletionLine = { done: true, doneReason: request.doneReason, evalCount: produced };
    res.end(`${JSON.stringify(last)}\n`);
  } finally {
    stallBudget.delete(id);
  }
}

async function readJson<T>(req: IncomingMessage): Promise<T> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as T;
}

const server = createServer((req, res) => {
  void (async () => {
    if (req.method === "GET" && req.url === "/health") {
      res.writeHead(loaded ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: loaded ? "ok" : "loading model" }));
      return;
    }
    if (req.method === "POST" && req.url === "/mode") {
      setMode(await readJson<RunnerMode>(req));
      res.writeHead(200).end();
      return;
    }
    if (req.method === "POST" && req.url === "/completion") {
      const request = await readJson<CompletionRequest>(req);
      let isClosed = false;
      res.on("close", () => {
        isClosed = true;
        wakeup.wakeAll();
      });
      await complete(request, res, () => isClosed);
      return;
    }
    res.writeHead(404).end();
  })().catch((error: unknown) => {
    process.stderr.write(`runner error: ${(error as Error).message}\n`);
    res.destroy();
  });
});

if (discoveryMs === undefined)
  server.listen(port, "127.0.0.1", () => {
    // What the runner itself prints when it listens (runner/ollamarunner/runner.go; llama-server's main).
    const listening = (process.env[RUNNER_PROGRAM_ENV] ?? "").endsWith("llama-server")
      ? `main: server is listening on http://127.0.0.1:${port} - starting the main loop`
      : `time=${new Date().toISOString()} level=INFO source=runner.go:1252 msg="Server listening on 127.0.0.1:${port}"`;
    process.stderr.write(`${listening}\n`);
    setTimeout(() => {
      loaded = true;
    }, config.loadMs ?? 0);
  });

// The simulator kills runners with SIGKILL, as Ollama does; if the simulator itself dies, follow it.
process.on("disconnect", () => process.exit(0));
process.channel?.unref();
