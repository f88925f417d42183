import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Simulator } from "./types.js";

/**
 * Plays systemd's part for a simulator running inside this process: a tiny HTTP endpoint that
 * restarts it on request — even after it crashed (F7) and its own control API is gone — and the
 * argv of a `command` restart the watchdog runs to reach it (no shell).
 */
export interface Supervisor {
  /** argv for the watchdog's `restart.command.argv`. */
  restartArgv: string[];
  /** performance.now() of every restart carried out. */
  restarts: number[];
  close(): Promise<void>;
}

/** argv of a program that POSTs to `url` and exits 0 on a 2xx answer, 1 otherwise. */
export function postArgv(url: string): string[] {
  return [
    process.execPath,
    "-e",
    "fetch(process.argv[1],{method:'POST'}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))",
    url,
  ];
}

export async function startSupervisor(simulator: Pick<Simulator, "restart">): Promise<Supervisor> {
  const restarts: number[] = [];
  const server = createServer((req, res) => {
    if (req.method !== "POST") {
      res.writeHead(405).end();
      return;
    }
    restarts.push(performance.now());
    simulator.restart().then(
      () => res.writeHead(204).end(),
      (error: unknown) => res.writeHead(500).end(String(error)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/restart`;
  return {
    restartArgv: postArgv(url),
    restarts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
