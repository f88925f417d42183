/**
 * Restart a container through the Docker Engine API on its unix socket:
 * `POST /containers/<name>/restart?t=<stop seconds>`, 204 = restarted. Under a deadline: a hung
 * daemon must not hold the executor.
 */
import { request } from "node:http";
import type { ActionContext, ActionModule, ActionRun } from "./action.js";

/** Seconds Docker waits for the container to stop before it kills it. */
export const DOCKER_STOP_SECONDS = 10;

export function restartDocker(options: {
  socketPath: string;
  container: string;
  timeoutMs: number;
  stopSeconds?: number;
}): Promise<ActionRun> {
  const path = `/containers/${encodeURIComponent(options.container)}/restart?t=${options.stopSeconds ?? DOCKER_STOP_SECONDS}`;
  const what = `docker restart ${options.container}`;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (run: ActionRun) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      req.destroy();
      resolve(run);
    };
    const req = request({ socketPath: options.socketPath, method: "POST", path }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (body.length < 4096) body += chunk;
      });
      res.on("end", () => {
        if (res.statusCode === 204) return finish({ ok: true, detail: what });
        finish({ ok: false, error: `${what}: HTTP ${res.statusCode}${engineMessage(body)}` });
      });
      res.on("error", (error) => finish({ ok: false, error: `${what}: ${error.message}` }));
    });
    const deadline = setTimeout(
      () => finish({ ok: false, error: `${what}: timed out after ${options.timeoutMs}ms` }),
      options.timeoutMs,
    );
    req.on("error", (error: NodeJS.ErrnoException) =>
      finish({ ok: false, error: `${what}: ${error.code ?? error.message} (${options.socketPath})` }),
    );
    req.end();
  });
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
