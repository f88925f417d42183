/**
 * Errors the stall guard answers itself, in the shape Ollama uses on the same endpoint: `{"error":
 * "…"}` on the native API (`server/routes.go`), `{"error":{"message","type"}}` on the OpenAI-compatible
 * one (`middleware/openai.go` writeError → `openai.NewError`, v0.20.0), so clients parse them as they
 * parse Ollama's own.
 */
import type { ServerResponse } from "node:http";

export function isOpenAiPath(path: string): boolean {
  return path.startsWith("/v1/");
}

export function errorBody(path: string, status: number, message: string): string {
  if (!isOpenAiPath(path)) return JSON.stringify({ error: message });
  const type = status === 400 ? "invalid_request_error" : status === 404 ? "not_found_error" : "api_error";
  return JSON.stringify({ error: { message, type } });
}

/** A complete error answer; `retryAfterS` adds Retry-After, `close` ends the connection after it. */
export function sendError(
  res: ServerResponse,
  path: string,
  status: number,
  message: string,
  extra: { retryAfterS?: number; close?: boolean } = {},
): void {
  const body = `${errorBody(path, status, message)}\n`;
  const headers: Record<string, string | number> = {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  };
  if (extra.retryAfterS !== undefined) headers["retry-after"] = Math.max(1, Math.ceil(extra.retryAfterS));
  if (extra.close) headers.connection = "close";
  res.writeHead(status, headers).end(body);
}

/** The last chunk of a stream the stall guard ends itself, in the stream's own framing. */
export function streamErrorChunk(format: "ndjson" | "sse" | "other", path: string, message: string): string {
  if (format === "sse") return `data: ${errorBody(path, 500, message)}\n\n`;
  return `${JSON.stringify({ error: message })}\n`;
}
