/**
 * The stall guard's client to Ollama: undici's Pool and its lowest-level API (`dispatch` with a
 * handler), so an answer's chunks come as Buffers with no stream objects in between — about a
 * quarter less CPU per proxied request than node:http's ClientRequest/Agent (bench/proxy.ts,
 * docs/proxy.md "Performance").
 */
import type { Readable } from "node:stream";
import type { Dispatcher, Pool } from "undici";

export type UpstreamHeaders = Record<string, string | string[]>;

export interface UpstreamHandlers {
  response(status: number, headers: UpstreamHeaders): void;
  data(chunk: Buffer): void;
  end(): void;
  /** A failure before the answer's head (`responded` false) or in its body. */
  error(error: NodeJS.ErrnoException, responded: boolean): void;
}

/** One request to Ollama in flight. */
export interface UpstreamCall {
  pause(): void;
  resume(): void;
  /** Ends it at once (the connection is dropped): Ollama sees its client go away. */
  abort(): void;
}

export interface UpstreamRequest {
  method: string;
  path: string;
  headers: UpstreamHeaders;
  /** A body read already, the client's request streamed through, or none. */
  body: Buffer | Readable | null;
}

export class Upstream {
  private constructor(private readonly pool: Pool) {}

  /** undici is loaded here, when a guard starts: a watchdog without a proxy never loads it. */
  static async open(origin: string, options: { connectTimeoutMs: number }): Promise<Upstream> {
    const { Pool } = await import("undici");
    const pool = new Pool(origin, {
      connectTimeout: options.connectTimeoutMs,
      // Loads and long generations: Ollama sends its head with the first token, which may take
      // minutes, and nothing between tokens is a deadline here (maxTokenGap is the guard's own).
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: 4_000,
      pipelining: 1,
    });
    return new Upstream(pool);
  }

  call(request: UpstreamRequest, on: UpstreamHandlers): UpstreamCall {
    let controller: Dispatcher.DispatchController | undefined;
    let aborted = false;
    let responded = false;
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (aborted) c.abort(new Error("aborted"));
      },
      onResponseStart(_c, status, headers) {
        responded = true;
        on.response(status, headers as UpstreamHeaders);
      },
      onResponseData(_c, chunk) {
        on.data(chunk);
      },
      onResponseEnd() {
        on.end();
      },
      onResponseError(_c, error) {
        if (!aborted) on.error(error as NodeJS.ErrnoException, responded);
      },
    };
    this.pool.dispatch({ ...request, body: request.body ?? null }, handler);
    return {
      pause: () => controller?.pause(),
      resume: () => controller?.resume(),
      abort: () => {
        if (aborted) return;
        aborted = true;
        controller?.abort(new Error("aborted"));
      },
    };
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
