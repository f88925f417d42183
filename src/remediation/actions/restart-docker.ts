/**
 * Restart a container through the Docker Engine API on its unix socket:
 * `POST /containers/<name>/restart?t=<stop seconds>`, 204 = restarted. Under a deadline: a hung
 * daemon must not hold the executor.
 *
 * Preflight: a container a person stopped is left stopped. `GET /containers/<name>/json`:
 * `paused`, `created`, or `exited` with code 0 or 143 (Ollama exits 0 on SIGTERM: its signal
 * handler closes the server and `RunServer` returns nil — server/routes.go `Serve`, cmd/cmd.go
 * `RunServer`, v0.12.5; 143 for an entrypoint that dies of the SIGTERM) and not OOM-killed, is a
 * stop by its operator. A crash (another exit code, OOM, `dead`) or a running but frozen
 * container is restarted.
 */
import { request } from "node:http";
import type { ActionContext, ActionModule, ActionRun, Refusal } from "./action.js";

/** Seconds Docker waits for the container to stop before it kills it. */
export const DOCKER_STOP_SECONDS = 10;
/** The deadline of the preflight's inspect. */
const INSPECT_TIMEOUT_MS = 3000;

interface EngineAnswer {
  status: number;
  body: string;
}

/** One Engine API request: the answer, or an error in words. Never throws, never outlives its deadline. */
function engineRequest(options: {
  socketPath: string;
  method: string;
  path: string;
  timeoutMs: number;
}): Promise<EngineAnswer | { error: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (answer: EngineAnswer | { error: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      req.destroy();
      resolve(answer);
    };
    const req = request(
      { socketPath: options.socketPath, method: options.method, path: options.path },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (body.length < 65_536) body += chunk;
        });
        res.on("end", () => finish({ status: res.statusCode ?? 0, body }));
        res.on("error", (error) => finish({ error: error.message }));
      },
    );
    const deadline = setTimeout(
      () => finish({ error: `timed out after ${options.timeoutMs}ms` }),
      options.timeoutMs,
    );
    req.on("error", (error: NodeJS.ErrnoException) =>
      finish({ error: `${error.code ?? error.message} (${options.socketPath})` }),
    );
    req.end();
  });
}

export async function restartDocker(options: {
  socketPath: string;
  container: string;
  timeoutMs: number;
  stopSeconds?: number;
}): Promise<ActionRun> {
  const path = `/containers/${encodeURIComponent(options.container)}/restart?t=${options.stopSeconds ?? DOCKER_STOP_SECONDS}`;
  const what = `docker restart ${options.container}`;
  const answer = await engineRequest({
    socketPath: options.socketPath,
    method: "POST",
    path,
    timeoutMs: options.timeoutMs,
  });
  if ("error" in answer) return { ok: false, error: `${what}: ${answer.error}` };
  if (answer.status === 204) return { ok: true, detail: what };
  return { ok: false, error: `${what}: HTTP ${answer.status}${engineMessage(answer.body)}` };
}

/** Whether the container's state says a person stopped it (see the top of this file). */
export function operatorStoppedContainer(container: string, inspect: unknown): string | undefined {
  const state = (inspect as { State?: Record<string, unknown> } | undefined)?.State;
  if (!state || typeof state.Status !== "string") return undefined;
  const status = state.Status;
  const exitCode = state.ExitCode;
  if (status === "paused") return `container ${container} is paused: paused by its operator — not restarting`;
  if (status === "created") return `container ${container} was created but never started — not starting it`;
  if (status === "exited" && (exitCode === 0 || exitCode === 143) && state.OOMKilled !== true) {
    return `container ${container} is stopped (exited ${exitCode}, a clean stop): stopped by its operator — not restarting`;
  }
  return undefined;
}

export async function dockerPreflight(options: {
  socketPath: string;
  container: string;
}): Promise<Refusal | undefined> {
  const answer = await engineRequest({
    socketPath: options.socketPath,
    method: "GET",
    path: `/containers/${encodeURIComponent(options.container)}/json`,
    timeoutMs: INSPECT_TIMEOUT_MS,
  });
  if ("error" in answer || answer.status !== 200) return undefined;
  let inspect: unknown;
  try {
    inspect = JSON.parse(answer.body);
  } catch {
    return undefined;
  }
  const why = operatorStoppedContainer(options.container, inspect);
  return why ? { why } : undefined;
}

function engineMessage(body: string): string {
  try {
    const message = (JSON.parse(body) as { message?: unknown }).message;
    return typeof message === "string" ? `: ${message}` : "";
  } catch {
    return body.trim() ? `: ${body.trim().slice(0, 200)}` : "";
  }
}

export const restartDockerAction: ActionModule = {
  name: "restart-docker",
  handles: (command, target) => command.kind === "restart" && target.restart.docker !== undefined,
  deadlineMs: (_command, context) => context.target.restart.docker?.timeout ?? 0,
  preflight(_command, context) {
    const docker = context.target.restart.docker;
    if (!docker) return Promise.resolve(undefined);
    return dockerPreflight({ socketPath: docker.socket, container: docker.container });
  },
  run(_command, context: ActionContext) {
    const docker = context.target.restart.docker;
    if (!docker) return Promise.resolve({ ok: false, error: "no restart.docker configured" });
    return restartDocker({
      socketPath: docker.socket,
      container: docker.container,
      timeoutMs: docker.timeout,
    });
  },
};
