import { post } from "./http-post.js";
import type { ReceiverKind } from "./kind.js";
import type { Notice } from "./notice.js";
import { readSecret } from "./secret.js";

const PRIORITY: Record<Notice["severity"], number> = { critical: 5, warning: 4, info: 3 };
const TAGS: Record<Notice["kind"], string[]> = {
  detected: ["rotating_light"],
  action: ["wrench"],
  healed: ["white_check_mark"],
  exhausted: ["sos"],
  digest: ["memo"],
  test: ["test_tube"],
};

/**
 * ntfy (ntfy.sh or self-hosted): JSON publishing to the server's root with the topic in the body
 * (https://docs.ntfy.sh/publish/#publish-as-json), so titles need no header encoding.
 */
export const ntfy: ReceiverKind<"ntfy"> = {
  key: "ntfy",
  create(name, options, env) {
    const topicUrl = new URL(readSecret(options, "url", env) as string);
    const topic = topicUrl.pathname.split("/").filter(Boolean).at(-1) ?? "";
    const root = new URL(topicUrl.pathname.replace(/[^/]*\/?$/, ""), topicUrl.origin).toString();
    const token = readSecret(options, "token", env);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    return {
      name,
      kind: "ntfy",
      secrets: [topicUrl.toString(), topic, ...(token ? [token] : [])],
      send: (notice, ctx) =>
        post(
          root,
          {
            headers,
            body: JSON.stringify({
              topic,
              title: notice.title,
              message: notice.text,
              priority: PRIORITY[notice.severity],
              tags: TAGS[notice.kind],
              ...(notice.link
                ? { click: notice.link, actions: [{ action: "view", label: "Report", url: notice.link }] }
                : {}),
            }),
          },
          ctx,
        ),
    };
  },
};
