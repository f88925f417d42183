import type { IncomingMessage, ServerResponse } from "node:http";

/** One HTTP route of the daemon's server; modules (metrics, page, api) contribute lists of these. */
export interface Route {
  method: "GET" | "POST";
  /** Exact path, or a RegExp over the path (its match is passed as `params`). */
  path: string | RegExp;
  handle(req: IncomingMessage, res: ServerResponse, params: RegExpExecArray | null): void | Promise<void>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(text);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  contentType = "text/plain; charset=utf-8",
): void {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  res.end(text);
}
