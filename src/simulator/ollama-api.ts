/**
 * Ollama's HTTP API, as clients and the watchdog see it: /, /api/version, /api/tags, /api/show,
 * /api/ps, /api/generate, /api/chat, /v1/chat/completions. Faults are consulted through `effects`.
 */
import { randomInt } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type CatalogModel, DEFAULT_NUM_CTX, findModel } from "./catalog.js";
import type { FaultEffects } from "./faults/fault.js";
import { BadRequestError, readJsonBody, sendJson, sendText } from "./http-util.js";
import { RunnerTerminatedError } from "./runner-handle.js";
import { QueueFullError, type Scheduler } from "./scheduler.js";
import type { SimulatorTiming } from "./types.js";
import {
  countPromptTokens,
  formatGoTime,
  OLLAMA_VERSION,
  parseKeepAlive,
  psEntry,
  QUEUE_FULL_MESSAGE,
  showResponse,
  statsFields,
  tagsEntry,
} from "./wire.js";

export interface OllamaApiContext {
  catalog: CatalogModel[];
  scheduler: () => Scheduler;
  effects: () => FaultEffects;
  defaultKeepAliveMs: number;
  timing: SimulatorTiming;
  /** Holds a request open forever (until restart/stop destroys its socket). */
  hang: (res: ServerResponse) => void;
}

type Dialect = "generate" | "chat" | "openai";

export async function handleOllama(
  ctx: OllamaApiContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const effects = ctx.effects();
  const path = (req.url ?? "/").split("?")[0] as string;
  if (effects.hangsApi) return ctx.hang(res);
  try {
    if ((req.method === "GET" || req.method === "HEAD") && path === "/")
      return sendText(res, 200, "Ollama is running");
    if (req.method === "GET" && path === "/api/version")
      return sendJson(res, 200, { version: OLLAMA_VERSION });
    if (req.method === "GET" && path === "/api/tags") {
      return sendJson(res, 200, { models: ctx.catalog.map(tagsEntry) });
    }
    if (req.method === "GET" && path === "/api/ps") {
      if (effects.hangsPs) return ctx.hang(res);
      return sendJson(res, 200, { models: listRunning(ctx) });
    }
    if (req.method === "POST" && path === "/api/show") {
      const body = await readJsonBody(req);
      const model = findModel(ctx.catalog, stringField(body.model) ?? stringField(body.name));
      if (!model) return sendJson(res, 404, { error: `model '${stringField(body.model) ?? ""}' not found` });
      return sendJson(res, 200, showResponse(model));
    }
    if (req.method === "POST" && path === "/api/generate") return await generate(ctx, req, res, "generate");
    if (req.method === "POST" && path === "/api/chat") return await generate(ctx, req, res, "chat");
    if (req.method === "POST" && path === "/v1/chat/completions")
      return await generate(ctx, req, res, "openai");
    return sendText(res, 404, "404 page not found");
  } catch (error) {
    if (res.headersSent) return void res.destroy();
    if (error instanceof BadRequestError) return sendJson(res, 400, { error: error.message });
    return sendJson(res, 500, { error: (error as Error).message });
  }
}

function listRunning(ctx: OllamaApiContext): Record<string, unknown>[] {
  const scheduler = ctx.scheduler();
  const now = Date.now();
  return scheduler
    .runners()
    .map((runner) => psEntry(runner.model, runner.numCtx, scheduler.expiresAt(runner, now)));
}

const stringField = (value: unknown) => (typeof value === "string" && value ? value : undefined);

interface ParsedGeneration {
  model: CatalogModel;
  prompt: string;
  /** No prompt / no messages: load (or, with keep_alive 0, unload) only. */
  empty: boolean;
  stream: boolean;
  numCtx: number;
  sessionMs: number;
  keepAliveZero: boolean;
  numPredict: number | undefined;
}

function parseGeneration(
  ctx: OllamaApiContext,
  body: Record<string, unknown>,
  dialect: Dialect,
): ParsedGeneration | string {
  const name = stringField(body.model);
  if (!name) throw new BadRequestError("model is required");
  const model = findModel(ctx.catalog, name);
  if (!model) return name;
  const options = (body.options && typeof body.options === "object" ? body.options : {}) as Record<
    string,
    unknown
  >;
  const messages = Array.isArray(body.messages) ? (body.messages as { content?: unknown }[]) : [];
  const prompt =
    dialect === "generate"
      ? (stringField(body.prompt) ?? "")
      : messages.map((message) => (typeof message.content === "string" ? message.content : "")).join("\n");
  const keepAlive = body.keep_alive === undefined ? undefined : parseKeepAlive(body.keep_alive);
  if (body.keep_alive !== undefined && keepAlive === undefined)
    throw new BadRequestError("invalid keep_alive");
  const sessionMs = keepAlive ?? ctx.defaultKeepAliveMs;
  const requestedCtx =
    typeof options.num_ctx === "number" && options.num_ctx > 0 ? options.num_ctx : DEFAULT_NUM_CTX;
  const numPredictRaw = dialect === "openai" ? body.max_tokens : options.num_predict;
  return {
    model,
    prompt,
    empty: dialect === "generate" ? prompt === "" : messages.length === 0,
    stream: dialect === "openai" ? body.stream === true : body.stream !== false,
    numCtx: Math.min(Math.floor(requestedCtx), model.contextLength),
    sessionMs,
    keepAliveZero: keepAlive === 0,
    numPredict: typeof numPredictRaw === "number" && numPredictRaw >= 0 ? numPredictRaw : undefined,
  };
}

async function generate(ctx: OllamaApiContext, req: IncomingMessage, res: ServerResponse, dialect: Dialect) {
  const started = performance.now();
  const body = await readJsonBody(req);
  const parsed = parseGeneration(ctx, body, dialect);
  if (typeof parsed === "string") return sendError(res, dialect, 404, `model '${parsed}' not found`);
  const { model } = parsed;
  const createdAt = () => formatGoTime(Date.now());

  if (parsed.empty && parsed.keepAliveZero) {
    ctx.scheduler().expireSoon(model);
    return sendJson(res, 200, doneMessage(dialect, model, createdAt(), "", "unload"));
  }
  const faultError = ctx.effects().generateError;
  if (faultError) return sendError(res, dialect, faultError.status, faultError.message);

  const abort = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) abort.abort();
  });
  const wanted = ctx.timing.answerTokens;
  const limited = parsed.numPredict !== undefined && parsed.numPredict < wanted;
  const tokens = parsed.empty ? 0 : limited ? (parsed.numPredict as number) : wanted;
  const openaiId = `chatcmpl-${randomInt(100, 999)}`;
  let text = "";
  const writeChunk = (chunk: string) => {
    if (!res.headersSent) {
      res.writeHead(200, {
        "content-type": dialect === "openai" ? "text/event-stream" : "application/x-ndjson",
      });
    }
    res.write(chunk);
  };
  try {
    const result = await ctx.scheduler().generate({
      model,
      numCtx: parsed.numCtx,
      sessionMs: parsed.sessionMs,
      tokens,
      doneReason: limited ? "length" : "stop",
      signal: abort.signal,
      onToken: (token) => {
        text += token;
        if (parsed.stream) writeChunk(streamChunk(dialect, model, createdAt(), token, openaiId));
      },
    });
    const doneReason = parsed.empty ? "load" : result.doneReason;
    const promptEvalCount = countPromptTokens(parsed.prompt);
    const stats = statsFields({
      totalNs: Math.round((performance.now() - started) * 1e6),
      loadNs: Math.round(result.loadMs * 1e6),
      promptEvalCount,
      promptEvalNs: promptEvalCount * 250_000,
      evalCount: result.evalCount,
      evalNs: Math.max(1, Math.round(result.evalMs * 1e6)),
    });
    if (dialect === "openai") {
      const usage = {
        prompt_tokens: promptEvalCount,
        completion_tokens: result.evalCount,
        total_tokens: promptEvalCount + result.evalCount,
      };
      const finish = doneReason === "length" ? "length" : "stop";
      if (parsed.stream) {
        writeChunk(openaiChunk(openaiId, model, "", finish));
        writeChunk("data: [DONE]\n\n");
        return void res.end();
      }
      return sendJson(res, 200, {
        id: openaiId,
        object: "chat.completion",
        created: Math.floor(Date.now() / 1000),
        model: model.name,
        system_fingerprint: "fp_ollama",
        choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: finish }],
        usage,
      });
    }
    const final = {
      ...doneMessage(dialect, model, createdAt(), parsed.stream ? "" : text, doneReason),
      ...stats,
    };
    if (parsed.stream) {
      writeChunk(`${JSON.stringify(final)}\n`);
      return void res.end();
    }
    return sendJson(res, 200, final);
  } catch (error) {
    if (abort.signal.aborted || res.destroyed) return;
    if (error instanceof QueueFullError) return sendError(res, dialect, 503, QUEUE_FULL_MESSAGE);
    const message = error instanceof RunnerTerminatedError ? error.message : (error as Error).message;
    if (!res.headersSent) return sendError(res, dialect, 500, message);
    // Ollama, once it has streamed, reports the error as one last line.
    res.end(
      dialect === "openai"
        ? `data: ${JSON.stringify({ error: { message } })}\n\n`
        : `${JSON.stringify({ error: message })}\n`,
    );
  }
}

function sendError(res: ServerResponse, dialect: Dialect, status: number, message: string): void {
  if (dialect === "openai") {
    const type = status === 404 ? "not_found_error" : status >= 500 ? "api_error" : "invalid_request_error";
    sendJson(res, status, { error: { message, type, param: null, code: null } });
    return;
  }
  sendJson(res, status, { error: message });
}

function doneMessage(
  dialect: Dialect,
  model: CatalogModel,
  createdAt: string,
  text: string,
  doneReason: string,
) {
  if (dialect === "generate") {
    return { model: model.name, created_at: createdAt, response: text, done: true, done_reason: doneReason };
  }
  return {
    model: model.name,
    created_at: createdAt,
    message: { role: "assistant", content: text },
    done_reason: doneReason,
    done: true,
  };
}

function streamChunk(
  dialect: Dialect,
  model: CatalogModel,
  createdAt: string,
  token: string,
  openaiId: string,
): string {
  if (dialect === "openai") return openaiChunk(openaiId, model, token, null);
  const body =
    dialect === "generate"
      ? { model: model.name, created_at: createdAt, response: token, done: false }
      : {
          model: model.name,
          created_at: createdAt,
          message: { role: "assistant", content: token },
          done: false,
        };
  return `${JSON.stringify(body)}\n`;
}

function openaiChunk(id: string, model: CatalogModel, content: string, finish: string | null): string {
  const chunk = {
    id,
    object: "chat.completion.chunk",
    created: Math.floor(Date.now() / 1000),
    model: model.name,
    system_fingerprint: "fp_ollama",
    choices: [{ index: 0, delta: { role: "assistant", content }, finish_reason: finish }],
  };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}
