import { post } from "./http-post.js";
import type { ReceiverKind } from "./kind.js";
import { plainText } from "./message.js";
import { readSecret } from "./secret.js";

/** Discord's message content is capped at 2000 characters. */
const DISCORD_MAX = 2000;

/** A Discord webhook: `{ "content" }` in Discord's Markdown. */
export const discord: ReceiverKind<"discord"> = {
  key: "discord",
  create(name, options, env) {
    const url = readSecret(options, "url", env) as string;
    return {
      name,
      kind: "discord",
      secrets: [url],
      send: (notice, ctx) => {
        const content = `**${notice.title}**\n${plainText(notice)}`;
        return post(
          url,
          {
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              content: content.length > DISCORD_MAX ? `${content.slice(0, DISCORD_MAX - 1)}…` : content,
              // a message about Ollama never pings anyone
              allowed_mentions: { parse: [] },
            }),
          },
          ctx,
        );
      },
    };
  },
};
