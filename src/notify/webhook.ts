import { post } from "./http-post.js";
import type { ReceiverKind } from "./kind.js";
import type { Notice } from "./notice.js";
import { readSecret } from "./secret.js";

/** The generic JSON webhook: the whole notice as JSON, for scripts and automation. */
export const webhook: ReceiverKind<"webhook"> = {
  key: "webhook",
  create(name, options, env) {
    const url = readSecret(options, "url", env) as string;
    return {
      name,
      kind: "webhook",
      secrets: [url],
      send: (notice, ctx) =>
        post(
          url,
          {
            headers: { "content-type": "application/json", ...options.headers },
            body: JSON.stringify(payload(notice)),
          },
          ctx,
        ),
    };
  },
};

/** The JSON body (docs/notifications.md documents it; `version` changes when a field does). */
export function payload(notice: Notice): Record<string, unknown> {
  return { source: "ollama-watchdog", version: 1, ...notice };
}
