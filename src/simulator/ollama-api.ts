/**
 * Ollama's HTTP API, as clients and the watchdog see it: /, /api/version, /api/tags, /api/show,
 * /api/ps, /api/generate, /api/chat, /api/embed, /api/embeddings, /v1/chat/completions, shaped by
 * the profile (server/routes.go of its tag). Faults are consulted through `effects`.
 */
import { randomInt } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type CatalogModel, findModel } from "./catalog.js";
import type { FaultEffects } from "./faults/fault.js";
import { BadRequestError, readJsonBody, sendJson, sendText } from "./http-util.js";
import { defaultNumCtx, type OllamaProfile } from "./profiles.js";
import { ClientGoneError, QueueFullError, type Scheduler } from "./scheduler.js";
import type { SimulatorTiming } from "./types.js";
import {
  countPromptTokens,
  embeddingVector,
  formatGoTime,
  parseKeepAlive,
  psEntry,
  QUEUE_FULL_MESSAGE,
  showResponse,
  statsFields,
  tagsEntry,
} from "./wire.js";

export interface OllamaApiContext {
  profile: OllamaProfile;
  /** Total VRAM of the fake GPU (the default num_ctx depends on it from 0.15.5). */
  gpuTotalBytes: number;
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
      return sendJson(res, 200, { version: ctx.profile.version });
    if (req.method === "GET" && path === "/api/tags") {
      return sendJson(res, 200, { models: ctx.catalog.map(tagsEntry) });
    }
    if (req.method === "GET" && path === "/api/ps") {
      if (effects.hangsPs) return ctx.hang(res);
      if (ctx.profile.ps.takesSchedulerLocks) {
        // server/sched.go loadedModels (v0.32.4+): each runner's refMu, held by unloads, loads, pings.
        const gone = new AbortController();
        res.once("close", () => gone.abort());
        const scheduler = ctx.scheduler();
        await scheduler.locksFree(gone.signal);
        if (scheduler !== ctx.scheduler()) return ctx.hang(res);
      }
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
    if (req.method === "POST" && (path === "/api/embed" || path === "/api/embeddings"))
      return await embed(ctx, req, res, path === "/api/embed" ? "embed" : "embeddings");
    return sendText(res, 404, "404 page not found");
  } catch (error) {
    if (error instanceof ClientGoneError) return;
    if (res.headersSent) return void res.destroy();
    if (error instanceof BadRequestError) return sendJson(res, 400, { error: error.message });
    return sendJson(res, 500, { error: (error as Error).message });
  }
}

/**
 * /api/ps: every runner in s.loaded (server/routes.go PsHandler). From 0.30 a model is added only
 * once its load finished; a runner whose unload removed it is gone in every version.
 */
function listRunning(ctx: OllamaApiContext): Record<string, unknown>[] {
  const scheduler = ctx.scheduler();
  const now = Date.now();
  return scheduler
    .runners()
    .filter((runner) => !runner.removed && (ctx.profile.ps.listsLoading || runner.status === "ready"))
    .sort((a, b) => scheduler.expiresAt(b, now) - scheduler.expiresAt(a, now))
    .map((runner) =>
      psEntry(
        runner.model,
        scheduler.vramBytes(runner),
        runner.reportedCtx,
        scheduler.expiresAt(runner, now),
      ),
    );
}

const stringField = (value: unknown) => (typeof value === "string" && value ? value : undefined);

interface ParsedGeneration {
  model: CatalogModel;
  /** The name as the client wrote it (Ollama quotes it in capability errors). */
  requestedName: string;
  prompt: string;
  /** No prompt / no messages: load (or, with keep_alive 0, unload) only. */
  empty: boolean;
  stream: boolean;
  /** options.num_ctx, else the profile's default; unclamped. */
  numCtx: number;
  numCtxAuto: boolean;
  /** undefined: the request sent no keep_alive. */
  keepAliveMs: number | undefined;
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
  const options = optionsOf(body);
  const messages = Array.isArray(body.messages) ? (body.messages as { content?: unknown }[]) : [];
  const prompt =
    dialect === "generate"
      ? (stringField(body.prompt) ?? "")
      : messages.map((message) => (typeof message.content === "string" ? message.content : "")).join("\n");
  const keepAliveMs = parseKeepAliveField(body);
  const numPredictRaw = dialect === "openai" ? body.max_tokens : options.num_predict;
  return {
    model,
    requestedName: name,
    prompt,
    empty: dialect === "generate" ? prompt === "" : messages.length === 0,
    stream: dialect === "openai" ? body.stream === true : body.stream !== false,
    ...requestContext(ctx, options),
    keepAliveMs,
    keepAliveZero: keepAliveMs === 0,
    numPredict: typeof numPredictRaw === "number" && numPredictRaw >= 0 ? numPredictRaw : undefined,
  };
}

/** keep_alive as sent; undefined when absent (the runner's session duration then stays). */
function parseKeepAliveField(body: Record<string, unknown>): number | undefined {
  if (body.keep_alive === undefined || body.keep_alive === null) return undefined;
  const keepAlive = parseKeepAlive(body.keep_alive);
  if (keepAlive === undefined) throw new BadRequestError("invalid keep_alive");
  return keepAlive;
}

function requestContext(ctx: OllamaApiContext, options: Record<string, unknown>) {
  const explicit = typeof options.num_ctx === "number" && options.num_ctx > 0 ? options.num_ctx : undefined;
  return {
    numCtx: Math.floor(explicit ?? defaultNumCtx(ctx.profile, ctx.gpuTotalBytes)),
    numCtxAuto: explicit === undefined,
  };
}

function optionsOf(body: Record<string, unknown>): Record<string, unknown> {
  return (body.options && typeof body.options === "object" ? body.options : {}) as Record<string, unknown>;
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
  if (model.embedding) {
    // server/routes.go: scheduleRunner's capability check, before any load.
    const what = dialect === "generate" ? "generate" : "chat";
    return sendError(res, dialect, 400, `${JSON.stringify(parsed.requestedName)} does not support ${what}`);
  }
  const faultError = ctx.effects().generateError;
  if (faultError) return sendError(res, dialect, faultError.status, faultError.message);

  const abort = abortOnClose(res);
  const wanted = ctx.timing.answerTokens;
  const limited = parsed.numPredict !== undefined && parsed.numPredict < wanted;
  const tokens = parsed.empty ? 0 : limited ? (parsed.numPredict as number) : wanted;
  const openaiId = `chatcmpl-${randomInt(100, 999)}`;
  let text = "";
  let lastChunk: Record<string, unknown> | undefined;
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
      numCtxAuto: parsed.numCtxAuto,
      keepAliveMs: parsed.keepAliveMs,
      defaultKeepAliveMs: ctx.defaultKeepAliveMs,
      kind: "completion",
      tokens,
      doneReason: limited ? "length" : "stop",
      signal: abort.signal,
      onToken: (token) => {
        text += token;
        if (dialect !== "openai") lastChunk = streamBody(dialect, model, createdAt(), token);
        if (parsed.stream) writeChunk(streamChunk(dialect, model, createdAt(), token, openaiId));
      },
    });
    if (result.repeatAborted) {
      // llm/server.go: the repeat guard returns without a final message; the handler ends the
      // stream, or (not streaming) answers with the last chunk it had, done: false.
      if (parsed.stream) {
        if (!res.headersSent) writeChunk("");
        return void res.end();
      }
      return sendJson(res, 200, { ...(lastChunk ?? {}), ...contentField(dialect, text) });
    }
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
    if (error instanceof ClientGoneError || abort.signal.aborted || res.destroyed)
      return noteAbort(res, error, parsed.stream);
    if (error instanceof QueueFullError) return sendError(res, dialect, 503, QUEUE_FULL_MESSAGE);
    const message = (error as Error).message;
    if (!res.headersSent) return sendError(res, dialect, 500, message);
    // Ollama, once it has streamed, reports the error as one last line.
    res.end(
      dialect === "openai"
        ? `data: ${JSON.stringify({ error: { message } })}\n\n`
        : `${JSON.stringify({ error: message })}\n`,
    );
  }
}

/** Aborts when the client goes away before the answer is complete (the request's context). */
function abortOnClose(res: ServerResponse): AbortController {
  const abort = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) abort.abort();
  });
  return abort;
}

/**
 * The status Gin logs for a request whose client left (the handler returns either way): 499
 * "request canceled" while it waited in the scheduler (server/routes.go handleScheduleError), the
 * error line's 200 when streaming, 500 from the non-streaming error path.
 */
function noteAbort(res: ServerResponse, error: unknown, stream: boolean): void {
  if (res.headersSent) return;
  const inScheduler = error instanceof ClientGoneError && error.phase === "scheduler";
  res.statusCode = inScheduler ? 499 : stream ? 200 : 500;
}

function contentField(dialect: Dialect, text: string): Record<string, unknown> {
  return dialect === "generate" ? { response: text } : { message: { role: "assistant", content: text } };
}

/**
 * /api/embed (`input`: a string or strings → `embeddings`) and the older /api/embeddings
 * (`prompt` → `embedding`): one trip through the scheduler, like any request (server/routes.go).
 */
async function embed(
  ctx: OllamaApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  dialect: "embed" | "embeddings",
): Promise<void> {
  const started = performance.now();
  const body = await readJsonBody(req);
  const name = stringField(body.model);
  if (!name) throw new BadRequestError("model is required");
  const model = findModel(ctx.catalog, name);
  if (!model) return sendJson(res, 404, { error: `model "${name}" not found, try pulling it first` });
  const inputs =
    dialect === "embeddings"
      ? [typeof body.prompt === "string" ? body.prompt : ""]
      : typeof body.input === "string"
        ? [body.input]
        : Array.isArray(body.input)
          ? body.input.filter((item): item is string => typeof item === "string")
          : [];
  const abort = abortOnClose(res);
  try {
    const result = await ctx.scheduler().generate({
      model,
      ...requestContext(ctx, optionsOf(body)),
      keepAliveMs: parseKeepAliveField(body),
      defaultKeepAliveMs: ctx.defaultKeepAliveMs,
      kind: "embed",
      tokens: 0,
      doneReason: "stop",
      signal: abort.signal,
      onToken: () => undefined,
    });
    if (dialect === "embeddings") return sendJson(res, 200, { embedding: embeddingVector(inputs[0] ?? "") });
    return sendJson(res, 200, {
      model: model.name,
      embeddings: inputs.map((input) => embeddingVector(input)),
      total_duration: Math.round((performance.now() - started) * 1e6),
      load_duration: Math.round(result.loadMs * 1e6),
      prompt_eval_count: inputs.reduce((sum, input) => sum + countPromptTokens(input), 0),
    });
  } catch (error) {
    if (error instanceof ClientGoneError || abort.signal.aborted || res.destroyed)
      return noteAbort(res, error, false);
    if (error instanceof QueueFullError) return sendJson(res, 503, { error: QUEUE_FULL_MESSAGE });
    return sendJson(res, 500, { error: (error as Error).message });
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

function streamBody(
  dialect: "generate" | "chat",
  model: CatalogModel,
  createdAt: string,
  token: string,
): Record<string, unknown> {
  return dialect === "generate"
    ? { model: model.name, created_at: createdAt, response: token, done: false }
    : {
        model: model.name,
        created_at: createdAt,
        message: { role: "assistant", content: token },
        done: false,
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
  return `${JSON.stringify(streamBody(dialect, model, createdAt, token))}\n`;
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
