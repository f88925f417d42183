import { compareOllamaVersions, parseOllamaVersion } from "../core/ollama-version.js";
/**
 * The Ollama release lines the simulator reproduces. Each profile is data: what differs between
 * versions lives here, and the simulator reads these fields instead of comparing version strings.
 * Every field names the Ollama file (at the profile's `checkedAgainst` tag) it was read from;
 * docs/compatibility.md lists the same facts for people.
 */

/** How the runner process's command line reads (`ps`, /proc/PID/cmdline). */
export type RunnerArgvStyle =
  /** `…/runners/<variant>/ollama_llama_server runner --model <blob> … --port N` (llm/server.go v0.5.7). */
  | "ollama-llama-server"
  /** `<exe> runner [--ollama-engine] --model <blob> … --port N` (llm/server.go v0.12.5, v0.20.7). */
  | "ollama-runner"
  /** `<libdir>/llama-server --model <blob> --port N --host 127.0.0.1 …` (llm/llama_server.go v0.30.11). */
  | "llama-server";

/** What `context_length` in /api/ps reports. */
export type PsContextLength =
  /** No such field (server/routes.go PsHandler v0.5.7). */
  | "absent"
  /** The runner's options: the requested num_ctx, unclamped (server/routes.go v0.12.5: v.Options.NumCtx). */
  | "requested"
  /** The runner's context, clamped to the model's training length (v.llama.ContextLength(), v0.20.7+). */
  | "clamped";

/** How a request's num_ctx is compared with the loaded runner's (`needsReload`, server/sched.go). */
export type ReloadContextCompare =
  /** Both sides are the request's unclamped value: equal requests never reload (v0.5.7, v0.12.5). */
  | "requested"
  /**
   * The runner keeps the unclamped request value while /api/ps shows the clamped one: sending the
   * /api/ps value back reloads the model (server/sched.go needsReload + llm/server.go NewLlamaServer, v0.20.7).
   */
  | "unclamped-vs-clamped"
  /** Both sides clamped (`effectiveContext` in needsReload), automatic sizes kept (server/sched.go v0.30.11). */
  | "effective";

/** The default num_ctx when a request sets none. */
export type DefaultContext =
  | { kind: "fixed"; numCtx: number }
  /** By total VRAM: ≥ 47 GiB → 262144, ≥ 23 GiB → 32768, else 4096 (server/routes.go Serve, v0.15.5+). */
  | { kind: "vram" };

export interface OllamaProfile {
  /** What `--ollama-version` and `ollamaVersion` accept for it ("0.12"). */
  id: string;
  /** The exact release it models; /api/version answers this. */
  version: string;
  /** The git tag of ollama/ollama its behaviour was read from. */
  checkedAgainst: string;
  /** The releases it stands for, for humans. */
  covers: string;
  /** The releases it answers for in `resolveProfile`: since ≤ V < until. */
  since: string;
  until: string;
  runner: {
    argv: RunnerArgvStyle;
    /** argv[0] of a runner process. */
    program: string;
    /** `--ollama-engine` on the runner's command line (new Go engine). */
    ollamaEngine: boolean;
  };
  /**
   * Short-lived GPU-discovery children without `--model`, spawned at startup and whenever the GPU
   * list is refreshed with no runner to ask (discover/runner.go bootstrapDevices v0.12.5;
   * discover/llama_server.go llamaServerDiscoverDevices v0.30.11). null: none (v0.5.7 used cgo).
   */
  discovery: null | { argv: "ollama-runner" | "llama-server" };
  ps: {
    contextLength: PsContextLength;
    /** A model whose load has not finished is listed (it is in s.loaded before WaitUntilRunning up to 0.24). */
    listsLoading: boolean;
    /** /api/ps takes each runner's refMu (server/sched.go loadedModels, v0.32.4+): it waits out unloads, loads, pings. */
    takesSchedulerLocks: boolean;
  };
  reloadContextCompare: ReloadContextCompare;
  defaultContext: DefaultContext;
  /** waitForVRAMRecovery's timeout message is logged at WARN (≤ 0.12.5) rather than DEBUG. */
  vramRecoveryWarning: boolean;
  /** Log and error wording of the runner lifecycle (llm/server.go or llm/llama_server.go). */
  wording: {
    startingRunner: string;
    /** printf-style: `%s` is the load time in seconds. */
    runnerStarted: string;
    /** The error of a load whose runner died: prefix of `…: signal: killed`. */
    terminated: string;
    /** The error of a load that timed out or whose client went away: prefix of `…: context canceled`. */
    loadTimedOut: string;
    /** The slog source of the "starting" line. */
    source: string;
    /** The ERROR line when a runner process exits with an error (the reaping goroutine). */
    exited: string;
    /** A generation whose runner refused the connection; `{port}` is the runner's port. */
    unreachable: string;
  };
}

const OLLAMA_RUNNER_WORDING = {
  startingRunner: "starting runner",
  runnerStarted: "llama runner started in %s seconds",
  terminated: "llama runner process has terminated",
  loadTimedOut: "timed out waiting for llama runner to start",
  source: "server.go:400",
  exited: "llama runner terminated",
  unreachable:
    "model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, check ollama server logs for details",
};

const LLAMA_SERVER_WORDING = {
  startingRunner: "starting llama-server",
  runnerStarted: "llama-server started in %s seconds",
  terminated: "llama-server process has terminated",
  loadTimedOut: "timed out waiting for llama-server to start",
  source: "llama_server.go:425",
  exited: "llama-server terminated",
  unreachable: OLLAMA_RUNNER_WORDING.unreachable,
};

/** Oldest first; the last one is the default. */
export const OLLAMA_PROFILES: readonly OllamaProfile[] = [
  {
    id: "0.5",
    version: "0.5.7",
    checkedAgainst: "v0.5.7",
    covers: "0.5.0 – 0.5.12",
    since: "0.5.0",
    until: "0.5.13",
    runner: {
      argv: "ollama-llama-server",
      program: "/usr/local/lib/ollama/runners/cuda_v12_avx/ollama_llama_server",
      ollamaEngine: false,
    },
    discovery: null,
    ps: { contextLength: "absent", listsLoading: true, takesSchedulerLocks: false },
    reloadContextCompare: "requested",
    // api/types.go DefaultOptions v0.5.7: NumCtx 2048.
    defaultContext: { kind: "fixed", numCtx: 2048 },
    vramRecoveryWarning: true,
    wording: {
      ...OLLAMA_RUNNER_WORDING,
      startingRunner: "starting llama server",
      source: "server.go:376",
      unreachable:
        'POST predict: Post "http://127.0.0.1:{port}/completion": dial tcp 127.0.0.1:{port}: connect: connection refused',
    },
  },
  {
    id: "0.12",
    version: "0.12.5",
    checkedAgainst: "v0.12.5",
    covers: "0.12.0 – 0.12.5",
    since: "0.12.0",
    until: "0.12.6",
    runner: { argv: "ollama-runner", program: "/usr/local/bin/ollama", ollamaEngine: false },
    discovery: { argv: "ollama-runner" },
    ps: { contextLength: "requested", listsLoading: true, takesSchedulerLocks: false },
    reloadContextCompare: "requested",
    // envconfig/config.go v0.12.5: OLLAMA_CONTEXT_LENGTH default 4096.
    defaultContext: { kind: "fixed", numCtx: 4096 },
    vramRecoveryWarning: true,
    wording: OLLAMA_RUNNER_WORDING,
  },
  {
    id: "0.20",
    version: "0.20.7",
    checkedAgainst: "v0.20.7",
    covers: "0.15.5 – 0.24",
    since: "0.15.5",
    until: "0.25.0",
    runner: { argv: "ollama-runner", program: "/usr/local/bin/ollama", ollamaEngine: true },
    discovery: { argv: "ollama-runner" },
    ps: { contextLength: "clamped", listsLoading: true, takesSchedulerLocks: false },
    reloadContextCompare: "unclamped-vs-clamped",
    defaultContext: { kind: "vram" },
    vramRecoveryWarning: false,
    wording: { ...OLLAMA_RUNNER_WORDING, source: "server.go:444" },
  },
  {
    id: "0.30",
    version: "0.30.11",
    checkedAgainst: "v0.30.11",
    covers: "0.30.0 – 0.32.3",
    since: "0.30.0",
    until: "0.32.4",
    runner: { argv: "llama-server", program: "/usr/local/lib/ollama/llama-server", ollamaEngine: false },
    discovery: { argv: "llama-server" },
    ps: { contextLength: "clamped", listsLoading: false, takesSchedulerLocks: false },
    reloadContextCompare: "effective",
    defaultContext: { kind: "vram" },
    vramRecoveryWarning: false,
    wording: LLAMA_SERVER_WORDING,
  },
  {
    id: "0.33",
    version: "0.33.0",
    checkedAgainst: "v0.33.0-rc2",
    covers: "0.32.4 – 0.33",
    since: "0.32.4",
    until: "0.34.0",
    runner: { argv: "llama-server", program: "/usr/local/lib/ollama/llama-server", ollamaEngine: false },
    discovery: { argv: "llama-server" },
    ps: { contextLength: "clamped", listsLoading: false, takesSchedulerLocks: true },
    reloadContextCompare: "effective",
    defaultContext: { kind: "vram" },
    vramRecoveryWarning: false,
    wording: LLAMA_SERVER_WORDING,
  },
];

export const DEFAULT_PROFILE = OLLAMA_PROFILES[OLLAMA_PROFILES.length - 1] as OllamaProfile;

export class UnknownOllamaVersionError extends Error {}

/**
 * The profile for a version: a profile id ("0.12"), or a release ("0.12.3", "v0.32.5") inside the
 * range a profile covers. A release no profile covers is an error that lists the supported ranges.
 */
export function resolveProfile(version: string | undefined): OllamaProfile {
  if (version === undefined || version === "") return DEFAULT_PROFILE;
  const byId = OLLAMA_PROFILES.find((profile) => profile.id === version || profile.version === version);
  if (byId) return byId;
  const wanted = parseOllamaVersion(version);
  const supported = `supported: ${OLLAMA_PROFILES.map((profile) => `${profile.id} (${profile.covers})`).join(", ")}`;
  if (!wanted) throw new UnknownOllamaVersionError(`"${version}" is not an Ollama version; ${supported}`);
  const found = OLLAMA_PROFILES.find(
    (profile) =>
      compareOllamaVersions(wanted, parseOllamaVersion(profile.since) as number[]) >= 0 &&
      compareOllamaVersions(wanted, parseOllamaVersion(profile.until) as number[]) < 0,
  );
  if (!found)
    throw new UnknownOllamaVersionError(`no simulator profile models Ollama ${version}; ${supported}`);
  return found;
}

const GIB = 1024 ** 3;

/** The num_ctx a request without one gets (server/routes.go v0.20.7 Serve: 47/23 GiB thresholds). */
export function defaultNumCtx(profile: OllamaProfile, totalVramBytes: number): number {
  if (profile.defaultContext.kind === "fixed") return profile.defaultContext.numCtx;
  if (totalVramBytes >= 47 * GIB) return 262_144;
  if (totalVramBytes >= 23 * GIB) return 32_768;
  return 4096;
}

/** argv (without argv[0]) of a runner for a model. */
export function runnerArgs(
  profile: OllamaProfile,
  options: { blobPath: string; numCtx: number; numParallel: number; port: number },
): string[] {
  const { blobPath, numCtx, numParallel, port } = options;
  if (profile.runner.argv === "llama-server") {
    // llm/llama_server.go v0.30.11: --model, --port, --host first; -c is num_ctx × parallel.
    return [
      "--model",
      blobPath,
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--no-webui",
      "--offline",
      "-c",
      String(numCtx * numParallel),
      "-np",
      String(numParallel),
    ];
  }
  const engine = profile.runner.ollamaEngine ? ["--ollama-engine"] : [];
  return [
    "runner",
    ...engine,
    "--model",
    blobPath,
    "--ctx-size",
    String(numCtx * numParallel),
    "--batch-size",
    "512",
    "--n-gpu-layers",
    "999",
    "--threads",
    "2",
    "--parallel",
    String(numParallel),
    "--port",
    String(port),
  ];
}

/** argv (without argv[0]) of a GPU-discovery child: no --model. */
export function discoveryArgs(profile: OllamaProfile, port: number): string[] | undefined {
  if (!profile.discovery) return undefined;
  if (profile.discovery.argv === "llama-server") {
    // discover/llama_server.go v0.30.11.
    return ["--port", String(port), "--host", "127.0.0.1", "--no-webui", "--offline", "--verbose"];
  }
  // discover/runner.go v0.12.5 bootstrapDevices.
  return ["runner", "--ollama-engine", "--port", String(port)];
}

/** The program of a discovery child (the same binary as the runners). */
export function discoveryProgram(profile: OllamaProfile): string {
  return profile.discovery?.argv === "llama-server" ? profile.runner.program : "/usr/local/bin/ollama";
}

/** The num_ctx the runner keeps for a request's value, and the one /api/ps reports. */
export function runnerContext(
  profile: OllamaProfile,
  requested: number,
  trainContext: number,
): { kept: number; reported: number | undefined } {
  const clamped = Math.min(requested, trainContext);
  switch (profile.ps.contextLength) {
    case "absent":
      return { kept: requested, reported: undefined };
    case "requested":
      return { kept: requested, reported: requested };
    case "clamped":
      return { kept: profile.reloadContextCompare === "effective" ? clamped : requested, reported: clamped };
  }
}

/** Whether a request's num_ctx forces a reload of a runner that keeps `kept` (needsReload). */
export function contextForcesReload(
  profile: OllamaProfile,
  kept: number,
  requested: number,
  trainContext: number,
): boolean {
  if (profile.reloadContextCompare === "effective") return Math.min(requested, trainContext) !== kept;
  return requested !== kept;
}
