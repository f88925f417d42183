import { describeFetchError, type FetchResponse } from "../core/http.js";
import { DeliveryError, type SendContext } from "./notice.js";

/**
 * POSTs a body and reads the answer under the attempt's deadline. A 2xx is delivered; 408, 429
 * and 5xx are worth a retry; other answers are not. The error never carries the URL (a secret).
 */
export async function post(
  url: string,
  init: { headers: Record<string, string>; body: string },
  ctx: SendContext,
): Promise<void> {
  let response: FetchResponse;
  try {
    response = await ctx.fetch(url, {
      method: "POST",
      headers: init.headers,
      body: init.body,
      signal: ctx.signal,
    });
  } catch (error) {
    if (ctx.signal.aborted) throw new DeliveryError("timed out", true);
    throw new DeliveryError(describeFetchError(error), true);
  }
  // read (and cap) the answer so the connection is released; a receiver's words help a person
  const answer = (await response.text().catch(() => "")).slice(0, 200).replace(/\s+/g, " ").trim();
  if (response.ok) return;
  const retry = response.status >= 500 || response.status === 408 || response.status === 429;
  throw new DeliveryError(`HTTP ${response.status}${answer ? `: ${answer}` : ""}`, retry);
}
