import type { Config, TargetConfig } from "../config/schema.js";
import { checkedUnitName, fullUnitName, systemdWord } from "./unit.js";

/**
 * `install --proxy` (docs/proxy.md "Deployment"): the stall guard takes Ollama's address and
 * Ollama moves behind it, so no client changes. Ollama moves through a drop-in of its own unit
 * setting OLLAMA_HOST (Ollama reads it in envconfig.Host); uninstall removes the drop-in and
 * restarts Ollama, which is back on its old address. Pure: what to write and why it cannot be.
 */

/** Where Ollama moves when install writes the config itself: the port after Ollama's own. */
export const MOVED_OLLAMA_HOST = "127.0.0.1:11435";
export const DEFAULT_PROXY_LISTEN = "127.0.0.1:11434";

/**
 * The drop-in's file name. Drop-ins apply in the order of their names, and for Environment= the
 * last one wins: "zz-" sorts after the user's own (`systemctl edit` writes override.conf), whose
 * OLLAMA_HOST would otherwise keep Ollama on the port the guard now takes.
 */
export const DROP_IN_NAME = "zz-ollama-watchdog-proxy.conf";

/** Where the drop-in for an Ollama unit lives. */
export function dropInPath(unit: string, systemdDir = "/etc/systemd/system"): string {
  return `${systemdDir}/${fullUnitName(unit)}.d/${DROP_IN_NAME}`;
}

export interface ProxyDropIn {
  /** The Ollama unit the drop-in moves ("ollama.service"). */
  unit: string;
  path: string;
  content: string;
  /** host:port Ollama listens on after the move. */
  ollamaHost: string;
  /** Where the stall guard listens (Ollama's former address). */
  listen: string;
}

/**
 * The config install writes when none exists, with --proxy: the first target's Ollama on
 * MOVED_OLLAMA_HOST and its guard on 127.0.0.1:11434.
 */
export function withDefaultProxy(config: Config): Config {
  const [first, ...rest] = config.targets;
  if (!first) return config;
  const target: TargetConfig = {
    ...first,
    url: `http://${MOVED_OLLAMA_HOST}`,
    proxy: first.proxy ?? { listen: DEFAULT_PROXY_LISTEN, holdFor: 60_000, maxTokenGap: null },
  };
  return { ...config, targets: [target, ...rest] };
}

/**
 * One drop-in per target that has a stall guard and an Ollama under systemd, or the reasons
 * install --proxy cannot do it (each names the config key to change).
 */
export function proxyDropIns(
  config: Config,
  systemdDir = "/etc/systemd/system",
): { dropIns: ProxyDropIn[]; problems: string[] } {
  const problems: string[] = [];
  const dropIns: ProxyDropIn[] = [];
  const hint = `e.g. url: http://${MOVED_OLLAMA_HOST} and proxy: { listen: ${DEFAULT_PROXY_LISTEN} }`;
  config.targets.forEach((target, i) => {
    const key = `targets[${i}]`;
    if (!target.proxy) return;
    if (!target.restart.systemd) {
      problems.push(
        `${key}.restart: --proxy moves Ollama with a systemd drop-in; this target's Ollama is not a systemd unit (move it yourself: docs/proxy.md)`,
      );
      return;
    }
    const url = new URL(target.url);
    if (url.protocol !== "http:" || !isLoopback(url.hostname)) {
      problems.push(
        `${key}.url: --proxy moves a local Ollama; ${target.url} is not http on 127.0.0.1/localhost/[::1] (${hint})`,
      );
      return;
    }
    const ollamaHost = `${url.hostname}:${url.port || "80"}`;
    if (samePort(ollamaHost, target.proxy.listen)) {
      problems.push(
        `${key}.url: Ollama must move to another port than the guard's ${target.proxy.listen} (${hint})`,
      );
      return;
    }
    const unit = checkedUnitName(fullUnitName(target.restart.systemd.unit));
    if (dropIns.some((d) => d.unit === unit)) {
      problems.push(`${key}: another target already moves ${unit}`);
      return;
    }
    dropIns.push({
      unit,
      path: dropInPath(unit, systemdDir),
      content: renderProxyDropIn(ollamaHost, target.proxy.listen),
      ollamaHost,
      listen: target.proxy.listen,
    });
  });
  if (dropIns.length === 0 && problems.length === 0) {
    problems.push(
      `targets: --proxy needs a target with proxy: { listen: ${DEFAULT_PROXY_LISTEN} } (${hint})`,
    );
  }
  return problems.length ? { dropIns: [], problems } : { dropIns, problems };
}

export function renderProxyDropIn(ollamaHost: string, listen: string): string {
  return [
    "# Written by `ollama-watchdog install --proxy`; `ollama-watchdog uninstall` removes it and",
    "# restarts Ollama on its own address again.",
    `# Ollama moves here; the watchdog's stall guard answers clients on ${listen} (docs/proxy.md).`,
    "[Service]",
    `Environment=${systemdWord(`OLLAMA_HOST=${ollamaHost}`)}`,
    "",
  ].join("\n");
}

function isLoopback(host: string): boolean {
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]" || host.startsWith("127.");
}

/** Two listen addresses that would collide: the same port on loopback or the wildcard. */
function samePort(a: string, b: string): boolean {
  return a.slice(a.lastIndexOf(":") + 1) === b.slice(b.lastIndexOf(":") + 1);
}
