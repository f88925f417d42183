import { post } from "./http-post.js";
import type { ReceiverKind } from "./kind.js";
import { plainText } from "./message.js";
import { readSecret } from "./secret.js";

/** A Slack incoming webhook; Mattermost's incoming webhooks take the same `{ "text" }` body. */
export const slack: ReceiverKind<"slack"> = {
  key: "slack",
  create(name, options, env) {
    const url = readSecret(options, "url", env) as string;
    return {
      name,
      kind: "slack",
      secrets: [url],
      send: (notice, ctx) =>
        post(
          url,
          {
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ text: `*${notice.title}*\n${plainText(notice)}` }),
          },
          ctx,
        ),
    };
  },
};
