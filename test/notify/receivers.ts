/**
 * Real receivers on loopback for the notification tests: an HTTP server that records what it is
 * sent (and can answer 500, answer slowly or refuse), and a real SMTP server (the `smtp-server`
 * package) with STARTTLS on a throwaway self-signed certificate and password authentication.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";

export interface Received {
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
  json: () => Record<string, unknown>;
}

export interface HttpReceiver {
  url: string;
  received: Received[];
  /** Requests seen, answered or not. */
  attempts: number;
  /** How the next requests are answered: status code, and delay before answering. */
  mode: { status: number; delayMs: number };
  stop(): Promise<void>;
}

export async function startHttpReceiver(mode: Partial<HttpReceiver["mode"]> = {}): Promise<HttpReceiver> {
  const timers = new Set<NodeJS.Timeout>();
  const receiver: HttpReceiver = {
    url: "",
    received: [],
    attempts: 0,
    mode: { status: 200, delayMs: 0, ...mode },
    stop: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server: Server = createServer((req, res) => {
    receiver.attempts++;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const { status, delayMs } = receiver.mode;
      const answer = () => {
        timers.delete(timer);
        const body = Buffer.concat(chunks).toString("utf8");
        if (status < 300) {
          receiver.received.push({
            path: req.url ?? "",
            headers: req.headers,
            body,
            json: () => JSON.parse(body) as Record<string, unknown>,
          });
        }
        res.writeHead(status, { "content-type": "text/plain" }).end(status < 300 ? "ok" : "receiver broken");
      };
      const timer = setTimeout(answer, delayMs);
      timers.add(timer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}

/** A loopback port with nothing listening (a receiver that is down). */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

export interface Mail {
  from: string;
  to: string[];
  user: string | undefined;
  secure: boolean;
  raw: string;
}

export interface SmtpReceiver {
  port: number;
  /** The self-signed certificate to trust (PEM file). */
  caFile: string;
  mails: Mail[];
  stop(): Promise<void>;
}

/** A real SMTP server: STARTTLS offered, AUTH PLAIN/LOGIN required for `user`/`password`. */
export async function startSmtpReceiver(credentials: {
  user: string;
  password: string;
}): Promise<SmtpReceiver> {
  const dir = mkdtempSync(join(tmpdir(), "ow-smtp-"));
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  const mails: Mail[] = [];
  const server = new SMTPServer({
    key: readFileSync(key),
    cert: readFileSync(cert),
    authMethods: ["PLAIN", "LOGIN"],
    authOptional: false,
    allowInsecureAuth: false,
    disabledCommands: [],
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === credentials.user && auth.password === credentials.password) {
        callback(null, { user: auth.username });
      } else {
        callback(new Error("Invalid username or password"));
      }
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          user: session.user as string | undefined,
          secure: session.secure,
          raw: Buffer.concat(chunks).toString("utf8"),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    caFile: cert,
    mails,
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
