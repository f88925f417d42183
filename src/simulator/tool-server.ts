/**
 * The simulator's answers to its `nvidia-smi` and `journalctl` stand-ins, over a unix socket in its
 * state directory. The watchdog runs both every tick; as Node processes of their own each costs
 * ≈ 110 ms of CPU (Node's start), which at the tests' 250 ms interval kept one of a CI machine's two
 * cores busy. The stand-in is now a shell script asking this socket with curl (≈ 15 ms); it falls
 * back to the Node stand-in when nothing answers here (the simulator's process is gone: the GPU and
 * the journal outlive Ollama). Both give the same answer: ./tool-answers.ts.
 */
import { rmSync } from "node:fs";
import { createServer } from "node:http";
import type { ToolAnswer } from "./tool-answers.js";

/** The stand-ins that ask the socket. */
export type SocketTool = "nvidia-smi" | "journalctl";
/** The socket's name in the simulator's state directory (the wrappers in bin/ find it at ../). */
export const TOOL_SOCKET = "tools.sock";
/** Longer paths do not fit a unix socket address (108 bytes with the NUL): the Node stand-ins answer. */
const MAX_SOCKET_PATH = 100;

export interface ToolServer {
  close(): Promise<void>;
}

export async function startToolServer(
  socketPath: string,
  answer: (tool: SocketTool, args: string[]) => ToolAnswer,
): Promise<ToolServer | undefined> {
  if (socketPath.length > MAX_SOCKET_PATH) return undefined;
  rmSync(socketPath, { force: true });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://simulator");
    const tool = url.pathname.slice(1);
    if (tool !== "nvidia-smi" && tool !== "journalctl") {
      res.writeHead(404).end();
      return;
    }
    let answered: ToolAnswer;
    try {
      answered = answer(tool, url.searchParams.getAll("arg"));
    } catch (error) {
      res.writeHead(500).end(String(error));
      return;
    }
    // A hung tool: no answer until the caller kills its curl, or the simulator stops.
    if ("hang" in answered) return;
    // No x-stderr when there is none: curl reports an empty header's value as "\r".
    res.writeHead(200, {
      "content-type": "text/plain; charset=utf-8",
      "x-exit-code": String(answered.exitCode),
      ...(answered.stderr ? { "x-stderr": Buffer.from(answered.stderr).toString("base64") } : {}),
    });
    res.end(answered.stdout);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The stand-in at bin/<tool>: asks the socket, prints the answer's stdout and stderr and exits
 * with its status; when the socket does not answer (curl's 7: nothing listens), runs the Node
 * stand-in beside it (bin/.<tool>.js). No value from outside is written into the script.
 */
export function socketToolScript(tool: SocketTool): string {
  return `#!/bin/sh
# The simulator's ${tool} stand-in (src/simulator/tool-server.ts).
case $0 in */*) here=\${0%/*} ;; *) here=. ;; esac
sock=$here/../${TOOL_SOCKET}
ask() {
  n=$#
  for arg do set -- "$@" --data-urlencode "arg=$arg"; done
  shift "$n"
  curl -sS -G --unix-socket "$sock" -w '%{stderr}%{http_code} %header{x-exit-code} %header{x-stderr}' "$@" http://simulator/${tool}
}
if [ -S "$sock" ] && command -v curl >/dev/null 2>&1; then
  exec 3>&1
  # The answer's stdout straight to ours (fd 3); what -w writes (to curl's stderr) into meta.
  meta=$(ask "$@" 2>&1 1>&3)
  status=$?
  if [ "$status" -eq 0 ]; then
    code=\${meta%% *}
    rest=\${meta#* }
    exit_code=\${rest%% *}
    stderr=\${rest#* }
    [ -n "$stderr" ] && printf '%s' "$stderr" | base64 -di >&2
    if [ "$code" != 200 ]; then
      echo "${tool} (simulator stand-in): the simulator answered HTTP $code" >&2
      exit 1
    fi
    exit "$exit_code"
  fi
  if [ "$status" -ne 7 ]; then
    echo "${tool} (simulator stand-in): curl failed with status $status" >&2
    exit 1
  fi
fi
exec "$here/.${tool}.js" "$@"
`;
}
