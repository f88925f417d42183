import { readFileSync } from "node:fs";
import type { ReceiverKind } from "./kind.js";
import { plainText } from "./message.js";
import { DeliveryError } from "./notice.js";
import { readSecret } from "./secret.js";

type Mailer = import("nodemailer").Transporter;

/** SMTP answers a retry cannot change: authentication and policy refusals (5xx). */
function permanent(error: { responseCode?: number; code?: string }): boolean {
  return (error.responseCode !== undefined && error.responseCode >= 500) || error.code === "EAUTH";
}

/**
 * E-mail over SMTP with nodemailer, loaded on first use (only a host with an e-mail receiver
 * pays for it). STARTTLS is required by default; `tls: implicit` is TLS from the first byte (465).
 */
export const email: ReceiverKind<"email"> = {
  key: "email",
  create(name, options, env) {
    const password = readSecret(options, "password", env);
    const ca = options.caFile ? readFileSync(options.caFile, "utf8") : undefined;
    let mailer: Promise<Mailer> | undefined;
    const transport = (timeoutMs: number) => {
      mailer ??= import("nodemailer").then((nodemailer) =>
        nodemailer.createTransport({
          host: options.host,
          port: options.port,
          secure: options.tls === "implicit",
          requireTLS: options.tls === "starttls",
          ignoreTLS: options.tls === "none",
          ...(options.user && password ? { auth: { user: options.user, pass: password } } : {}),
          ...(ca ? { tls: { ca } } : {}),
          connectionTimeout: timeoutMs,
          greetingTimeout: timeoutMs,
          socketTimeout: timeoutMs,
          disableFileAccess: true,
          disableUrlAccess: true,
        }),
      );
      return mailer;
    };
    return {
      name,
      kind: "email",
      secrets: password ? [password] : [],
      async send(notice, ctx) {
        const deadline = new Promise<never>((_, reject) => {
          const fail = () => reject(new DeliveryError("timed out", true));
          if (ctx.signal.aborted) fail();
          else ctx.signal.addEventListener("abort", fail, { once: true });
        });
        const mailer = await transport(ctx.timeoutMs);
        try {
          await Promise.race([
            mailer.sendMail({
              from: options.from,
              to: options.to,
              subject: notice.title,
              text: plainText(notice),
              headers: { "X-Ollama-Watchdog-Event": notice.kind },
            }),
            deadline,
          ]);
        } catch (error) {
          if (error instanceof DeliveryError) throw error;
          const e = error as Error & { responseCode?: number; code?: string; response?: string };
          throw new DeliveryError(`${e.code ?? "SMTP"}: ${e.response ?? e.message}`, !permanent(e));
        }
      },
    };
  },
};
