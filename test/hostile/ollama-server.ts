import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A hostile or broken "Ollama" on a real socket (issue #11 M4): each path answers 200 with a body
 * that never ends. `endless`: valid-looking JSON streamed as fast as the client reads; `line`: one
 * line that never gets its newline; `drip`: one byte every 50 ms (only the deadline ends it).
 */
export type Hostility = "endless" | "line" | "drip";

export interface HostileServer {
  url: string;
  /** Bytes written so far, by path. */
  sent: Map<string, number>;
  close(): Promise<void>;
}

const CHUNK = Buffer.from(`${'{"name":"x","model":"x","size":1},'.repeat(1900)}`);

function pump(res: ServerResponse, chunk: Buffer, count: (n: number) => void): void {
  const write = () => {
    while (!res.destroyed) {
      count(chunk.length);
      if (!res.write(chunk)) {
        res.once("drain", write);
        return;
      }
    }
  };
  write();
}

/**
 * `modes` names the hostile paths; `fixed` answers other paths with a plain JSON body, so the
 * daemon gets far enough to meet the hostile one (a listed model makes it send canaries).
 */
export async function startHostileServer(
  modes: Record<string, Hostility>,
  fixed: Record<string, unknown> = {},
): Promise<HostileServer> {
  const sent = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] as string;
    const mode = modes[path];
    req.resume();
    if (!mode && path in fixed) {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(fixed[path]));
      return;
    }
    if (!mode) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
      return;
    }
    const count = (n: number) => sent.set(path, (sent.get(path) ?? 0) + n);
    res.writeHead(200, { "content-type": "application/json" });
    res.on("error", () => undefined);
    if (mode === "drip") {
      res.write('{"version":"');
      const timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer);
        count(1);
        res.write("0");
      }, 50);
      timers.add(timer);
      res.on("close", () => clearInterval(timer));
      return;
    }
    res.write(path === "/api/version" ? '{"version":"' : '{"models":[');
    pump(res, mode === "line" ? Buffer.alloc(CHUNK.length, "a") : CHUNK, count);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sent,
    close: async () => {
      for (const timer of timers) clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
