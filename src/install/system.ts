import { type ExecResult, execArgv } from "../core/exec.js";

/**
 * The few questions install, doctor and status ask the system, each one program run under a
 * deadline (argv, never a shell). Parsing is separate and pure.
 */
export type Exec = (argv: string[], timeoutMs?: number) => Promise<ExecResult>;

export const defaultExec: Exec = (argv, timeoutMs = 10_000) => execArgv(argv, { timeoutMs });

export function succeeded(result: ExecResult): boolean {
  return result.exitCode === 0 && !result.timedOut && result.spawnError === undefined;
}

/** One line saying why a program failed: for messages, never for branching. */
export function failureText(result: ExecResult): string {
  if (result.spawnError) return `${result.argv[0]}: ${result.spawnError}`;
  if (result.timedOut) return `${result.argv.join(" ")}: no answer within its deadline`;
  const output = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-3).join(" / ");
  return `${result.argv.join(" ")} exited ${result.exitCode ?? result.signal}${output ? `: ${output}` : ""}`;
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Pure: one passwd(5) line. */
export function parsePasswdLine(line: string): PasswdEntry | undefined {
  const fields = line.trim().split(":");
  if (fields.length < 7) return undefined;
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
  return { name: fields[0] as string, uid, gid, home: fields[5] as string };
}

export async function lookupUser(exec: Exec, name: string): Promise<PasswdEntry | undefined> {
  const result = await exec(["getent", "passwd", name], 5000);
  return succeeded(result) ? parsePasswdLine(result.stdout) : undefined;
}

export async function lookupGroupId(exec: Exec, name: string): Promise<number | undefined> {
  const result = await exec(["getent", "group", name], 5000);
  if (!succeeded(result)) return undefined;
  const gid = Number(result.stdout.split(":")[2]);
  return Number.isInteger(gid) ? gid : undefined;
}

/** Pure: `systemctl show -p A -p B UNIT` output → { A: …, B: … }. */
export function parseShow(text: string): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) properties[line.slice(0, at)] = line.slice(at + 1);
  }
  return properties;
}

export const UNIT_PROPERTIES = [
  "LoadState",
  "UnitFileState",
  "ActiveState",
  "SubState",
  "MainPID",
  "InvocationID",
  "NRestarts",
  "FragmentPath",
  "User",
  "WatchdogUSec",
] as const;

export type UnitProperties = Partial<Record<(typeof UNIT_PROPERTIES)[number], string>>;

/** undefined when systemctl is missing or gives no answer (no systemd here). */
export async function showUnit(exec: Exec, unit: string): Promise<UnitProperties | undefined> {
  const argv = ["systemctl", "show", ...UNIT_PROPERTIES.flatMap((p) => ["-p", p]), unit];
  const result = await exec(argv, 10_000);
  if (!succeeded(result)) return undefined;
  return parseShow(result.stdout) as UnitProperties;
}

export function unitSummary(properties: UnitProperties | undefined): {
  loaded: boolean;
  enabled: boolean;
  active: boolean;
} {
  return {
    loaded: properties?.LoadState === "loaded",
    enabled: properties?.UnitFileState === "enabled",
    active: properties?.ActiveState === "active",
  };
}

/** "127.0.0.1:11464" → "http://127.0.0.1:11464"; a wildcard address is reached on loopback. */
export function listenUrl(listen: string): string {
  const at = listen.lastIndexOf(":");
  let host = listen.slice(0, at);
  const port = listen.slice(at + 1);
  if (host === "0.0.0.0" || host === "") host = "127.0.0.1";
  if (host === "[::]") host = "[::1]";
  return `http://${host}:${port}`;
}

/** The /healthz body: `ticks` and the last tick's time (ISO `lastTickAt`, or epoch ms `lastTickWall`). */
export interface HealthBody {
  ok?: boolean;
  ticks?: number;
  lastTickAt?: string | null;
  lastTickWall?: number;
}

/** Pure: epoch ms of the last tick the daemon reported, if any. */
export function lastTickOf(body: HealthBody | undefined): number | undefined {
  if (!body) return undefined;
  if (typeof body.lastTickWall === "number") return body.lastTickWall;
  if (typeof body.lastTickAt === "string") {
    const ms = Date.parse(body.lastTickAt);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}
