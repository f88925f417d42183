/**
 * A model runner: the child process the simulator starts per loaded model. Its command line reads
 * like Ollama's (`ollama runner --model …/blobs/sha256-… --port N`), it burns CPU per generated
 * token and none when idle, and it can be told to deadlock, spin or stall. SIGSTOP and SIGKILL act
 * on it for real.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import {
  type CompletionLine,
  type CompletionRequest,
  RUNNER_CONFIG_ENV,
  type RunnerConfig,
  type RunnerMode,
} from "./runner-protocol.js";
import { Wakeup } from "./wakeup.js";
import { tokenText } from "./wire.js";

const argv = process.argv.slice(2);
const argValue = (flag: string) => {
  const index = argv.indexOf(flag);
  return index >= 0 ? argv[index + 1] : undefined;
};
const port = Number(argValue("--port"));
const modelPath = argValue("--model") ?? "";
const config = JSON.parse(process.env[RUNNER_CONFIG_ENV] ?? "{}") as RunnerConfig;

// The original argv (node + script path + these args) is longer than the title, so it fits.
process.title = ["ollama", ...argv].join(" ");

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function complete(
  request: CompletionRequest,
  res: ServerResponse,
  closed: () => boolean,
): Promise<void> {
  const id = Symbol("generation");
  if (mode.kind === "wedged") process.stderr.write("CUDA error: unspecified launch failure\n");
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  try {
    let produced = 0;
    while (produced < request.tokens) {
      if (!(await mayProceed(id, closed))) return;
      const started = performance.now();
      burnCpu(Math.min(config.cpuMsPerToken, config.tokenIntervalMs));
      const line: CompletionLine = { content: tokenText(produced) };
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

server.listen(port, "127.0.0.1", () => {
  process.stderr.write(`llama runner started: model=${modelPath} port=${port}\n`);
  setTimeout(() => {
    loaded = true;
  }, config.loadMs ?? 0);
});

// The simulator kills runners with SIGKILL, as Ollama does; if the simulator itself dies, follow it.
process.on("disconnect", () => process.exit(0));
process.channel?.unref();
