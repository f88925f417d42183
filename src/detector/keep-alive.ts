/**
 * The `keep_alive` a canary sends so that it never changes how long the model stays loaded:
 * Ollama resets a model's expiry to "now + keep_alive" when a request finishes, so the canary asks
 * for exactly the time that was left.
 */

/** An expiry further ahead than this is a `keep_alive: -1` model (Ollama reports ~290 years ahead). */
const FOREVER_AFTER_MS = 10 * 365 * 24 * 3600 * 1000;
/**
 * A model listed with an expiry in the past is stuck "Stopping…" (F4): it should already be gone,
 * so the canary keeps it only briefly (0 would unload at once and prove nothing).
 */
export const EXPIRED_KEEP_ALIVE_SECONDS = 30;

/** Ollama's zero time ("0001-01-01T00:00:00Z") means "no expiry set yet" (request still running). */
export function parseExpiry(expiresAt: string): number | undefined {
  const ms = Date.parse(expiresAt);
  if (Number.isNaN(ms) || new Date(ms).getUTCFullYear() < 2000) return undefined;
  return ms;
}

/**
 * Seconds to send as `keep_alive` (Ollama reads a number as seconds; negative = forever), or
 * undefined when the expiry is unknown.
 */
export function keepAliveFor(expiresAt: string, nowWall: number): number | undefined {
  const expires = parseExpiry(expiresAt);
  if (expires === undefined) return undefined;
  const remainingMs = expires - nowWall;
  if (remainingMs > FOREVER_AFTER_MS) return -1;
  if (remainingMs <= 0) return EXPIRED_KEEP_ALIVE_SECONDS;
  return Math.ceil(remainingMs / 1000);
}

/** True when Ollama still lists the model although its expiry has passed. */
export function isExpired(expiresAt: string, nowWall: number): boolean {
  const expires = parseExpiry(expiresAt);
  return expires !== undefined && expires < nowWall;
}
