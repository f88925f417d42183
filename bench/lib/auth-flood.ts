/** TLS files and a wrong-password flood for a watchdog behind its web config (bench and tests). */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";

/**
 * A CA and a server certificate for 127.0.0.1 signed by it, as an operator would make them, in
 * `dir`: ca.pem, server.crt, server.key.
 */
export function makeServerCertificate(dir: string): void {
  const ssl = (args: string[]) => execFileSync("/usr/bin/openssl", args, { cwd: dir, stdio: "pipe" });
  const newKey = ["-newkey", "rsa:2048", "-nodes"];
  ssl([
    "req",
    "-x509",
    ...newKey,
    "-days",
    "2",
    "-subj",
    "/CN=test-ca",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  ]);
  ssl(["req", ...newKey, "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"]);
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
  ssl(
    ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"].concat([
      "-days",
      "2",
      "-extfile",
      "san.ext",
      "-out",
      "server.crt",
    ]),
  );
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

export interface Answer {
  status: number;
  body: string;
  ms: number;
}

/** One GET on a fresh connection (a full TLS handshake, as curl or a health checker makes). */
export function httpsGet(
  url: string,
  options: { ca: Buffer; authorization?: string; timeoutMs: number },
): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const headers = options.authorization ? { authorization: options.authorization } : undefined;
    const req = request(url, { ca: options.ca, agent: false, headers, timeout: options.timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - started }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

export interface Flood {
  /** Stops the workers; resolves with how many answers of each status they got ("error": none). */
  stop(): Promise<Record<string, number>>;
}

/** `concurrency` loops, each sending wrong-password requests back to back until stopped. */
export function startFlood(url: string, options: { ca: Buffer; user: string; concurrency: number }): Flood {
  let running = true;
  const counts: Record<string, number> = {};
  const worker = async (w: number) => {
    for (let i = 0; running; i++) {
      const authorization = basicAuth(options.user, `wrong-${w}-${i}`);
      const status = await httpsGet(url, { ca: options.ca, authorization, timeoutMs: 60_000 }).then(
        (answer) => String(answer.status),
        () => "error",
      );
      counts[status] = (counts[status] ?? 0) + 1;
    }
  };
  const workers = Array.from({ length: options.concurrency }, (_, w) => worker(w));
  return {
    async stop() {
      running = false;
      await Promise.all(workers);
      return counts;
    },
  };
}
