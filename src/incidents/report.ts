import type { WatchdogState } from "../core/types.js";
import { sumDefined } from "./evidence.js";
import { gib, humanDuration, iso, percent } from "./format.js";
import { peakProblemState } from "./incident.js";
import type { EvidenceSample, Incident, RunnerTrace } from "./types.js";

/**
 * Renders an incident as a recovery report in Markdown: problem, symptoms with numbers, timeline,
 * verification, final status, what to check next. Pure: the same incident gives the same text.
 */
export function renderMarkdown(incident: Incident): string {
  const sections = [
    header(incident),
    section("Problem", problem(incident)),
    section("Symptoms", symptoms(incident)),
    section("Timeline", timeline(incident)),
    section("Verification", verification(incident)),
    section("Final status", finalStatus(incident)),
    section("What to check next", nextSteps(incident)),
  ];
  return `${sections.join("\n\n")}\n`;
}

/** Escapes text from the outside world (reasons, errors) so it stays plain text in Markdown. */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_[\]<>|#]/g, (c) => `\\${c}`).replace(/\r?\n/g, " ");
}

function code(text: string): string {
  const clean = text.replace(/\r?\n/g, " ");
  return clean.includes("`") ? `\`\` ${clean} \`\`` : `\`${clean}\``;
}

function section(title: string, body: string): string {
  return `## ${title}\n\n${body}`;
}

function header(incident: Incident): string {
  const lines = [
    `# Incident report: ${escapeMarkdown(incident.title)}`,
    "",
    `- **Incident**: ${code(incident.id)}`,
    `- **Target**: ${escapeMarkdown(incident.target)}`,
    `- **Opened**: ${iso(incident.openedWall)}`,
  ];
  if (incident.closedWall !== undefined) {
    lines.push(
      `- **Closed**: ${iso(incident.closedWall)} (after ${humanDuration(incident.closedWall - incident.openedWall)})`,
    );
  }
  lines.push(`- **Outcome**: ${incident.outcome}`);
  return lines.join("\n");
}

function firstTransitionTo(incident: Incident, state: WatchdogState) {
  return incident.transitions.find((t) => t.to === state);
}

function problem(incident: Incident): string {
  const parts = [
    `At ${iso(incident.openedWall)} the watchdog found **${escapeMarkdown(incident.target)}** ` +
      `\`${incident.problem.state}\`: ${escapeMarkdown(incident.problem.reason)}.`,
  ];
  const peak = peakProblemState(incident);
  if (peak !== incident.problem.state) {
    const worst = firstTransitionTo(incident, peak);
    if (worst) {
      parts.push(
        `It became \`${worst.to}\` at ${iso(worst.wall)} (${humanDuration(worst.wall - incident.openedWall)} later): ` +
          `${escapeMarkdown(worst.reason)}.`,
      );
    }
  }
  if (incident.recentIncidents > 0) {
    const n = incident.recentIncidents;
    parts.push(`This target had ${n} other incident${n === 1 ? "" : "s"} in the 24 h before this one.`);
  }
  return parts.join(" ");
}

/** The sample taken when the incident was at its worst (the numbers the report quotes). */
function worstSample(incident: Incident): EvidenceSample | undefined {
  return incident.evidence.find((s) => s.state === incident.worstState) ?? incident.evidence[0];
}

function apiSymptom(incident: Incident): string {
  const { stats } = incident;
  const latency =
    stats.maxApiLatencyMs !== undefined ? ` (slowest answer ${humanDuration(stats.maxApiLatencyMs)})` : "";
  if (stats.apiDownTicks === 0) return `- **API**: answered on every tick${latency}.`;
  const errors = stats.apiErrors.length ? `; errors: ${stats.apiErrors.map(code).join(", ")}` : "";
  return `- **API**: did not answer on ${stats.apiDownTicks} of ${stats.ticks} ticks${errors}${latency}.`;
}

function psSymptom(incident: Incident, sample: EvidenceSample | undefined): string | undefined {
  const { stats } = incident;
  const parts: string[] = [];
  if (sample?.ps) {
    const models = sample.ps.models.map((m) => {
      const expired = Date.parse(m.expiresAt) < sample.wall;
      const context = m.contextLength === null ? "" : `, context ${m.contextLength}`;
      const expiry = expired
        ? `, **expired at ${m.expiresAt}** (stuck "Stopping…")`
        : `, expires ${m.expiresAt}`;
      return `${code(m.name)} (${gib(m.sizeVram)} GiB in VRAM${context}${expiry})`;
    });
    parts.push(models.length ? `listed ${models.join("; ")}` : "no model loaded");
  }
  if (stats.maxPsLatencyMs !== undefined) parts.push(`slowest answer ${humanDuration(stats.maxPsLatencyMs)}`);
  if (stats.psFailures) parts.push(`failed on ${stats.psFailures} ticks`);
  if (stats.stuckStopping.length) {
    parts.push(`expired but still loaded: ${stats.stuckStopping.map(code).join(", ")}`);
  }
  return parts.length ? `- **/api/ps**: ${parts.join("; ")}.` : undefined;
}

function lastOkCanaryBefore(incident: Incident): EvidenceSample["canaries"][number] | undefined {
  for (const sample of [...incident.before].reverse()) {
    const ok = sample.canaries.find((c) => c.outcome === "ok");
    if (ok) return ok;
  }
  return undefined;
}

function canarySymptom(incident: Incident): string | undefined {
  const { stats } = incident;
  const parts: string[] = [];
  if (stats.canaryTimeouts) {
    const durations = stats.canaryTimeoutDurationsMs.map(humanDuration).join(", ");
    const more = stats.canaryTimeouts > stats.canaryTimeoutDurationsMs.length ? ", …" : "";
    parts.push(`${stats.canaryTimeouts} timed out without a token (after ${durations}${more})`);
  }
  if (stats.canaryErrors) {
    parts.push(`${stats.canaryErrors} failed (${stats.canaryErrorMessages.map(escapeMarkdown).join("; ")})`);
  }
  if (stats.canaryOk) parts.push(`${stats.canaryOk} answered`);
  const waiting = incident.evidence
    .flatMap((s) => s.canariesInFlight)
    .sort((a, b) => b.waitingMs - a.waitingMs)[0];
  if (waiting && waiting.waitingMs > 0) {
    parts.push(
      `longest wait seen for a first token: ${humanDuration(waiting.waitingMs)} on ${code(waiting.model)}`,
    );
  }
  const before = lastOkCanaryBefore(incident);
  if (before?.ttftMs !== undefined) {
    parts.push(
      `before the incident: first token in ${humanDuration(before.ttftMs)} on ${code(before.model)}`,
    );
  }
  return parts.length ? `- **Canary**: ${parts.join("; ")}.` : undefined;
}

function gpuSymptom(incident: Incident, sample: EvidenceSample | undefined): string | undefined {
  const { stats } = incident;
  if (stats.maxGpuUtilization === undefined && stats.maxVramUsedBytes === undefined) return undefined;
  const parts: string[] = [];
  const names = [...new Set(sample?.gpus?.map((g) => g.name) ?? [])];
  if (stats.minGpuUtilization !== undefined && stats.maxGpuUtilization !== undefined) {
    const range =
      Math.round(stats.minGpuUtilization * 100) === Math.round(stats.maxGpuUtilization * 100)
        ? percent(stats.maxGpuUtilization)
        : `${percent(stats.minGpuUtilization)}–${percent(stats.maxGpuUtilization)}`;
    parts.push(`utilization ${range} during the incident`);
    const beforeUtil = incident.before
      .flatMap((s) => s.gpus ?? [])
      .map((g) => g.utilization)
      .filter((u): u is number => u !== undefined);
    if (beforeUtil.length) parts.push(`up to ${percent(Math.max(...beforeUtil))} before`);
  }
  const used = sumDefined(sample?.gpus?.map((g) => g.memoryUsedBytes));
  const total = stats.vramTotalBytes;
  if (used !== undefined && total !== undefined) {
    parts.push(`VRAM ${gib(used)} / ${gib(total)} GiB used`);
  } else if (stats.maxVramUsedBytes !== undefined) {
    parts.push(`VRAM up to ${gib(stats.maxVramUsedBytes)} GiB used`);
  }
  const label = names.length ? ` (${names.map(escapeMarkdown).join(", ")})` : "";
  return `- **GPU**${label}: ${parts.join("; ")}.`;
}

/** Share of one core a runner used over the incident: ~0 is a deadlock, ~1 a spin. */
export function runnerCpuShare(trace: RunnerTrace): number | undefined {
  const elapsedSeconds = (trace.lastWall - trace.firstWall) / 1000;
  if (elapsedSeconds <= 0) return undefined;
  return (trace.lastCpuSeconds - trace.firstCpuSeconds) / elapsedSeconds;
}

function stateNote(states: string[]): string {
  if (states.includes("D")) return " (uninterruptible sleep: usually stuck in the GPU driver)";
  if (states.includes("Z")) return " (zombie: exited, not reaped)";
  if (states.includes("T") || states.includes("t")) return " (stopped)";
  return "";
}

function runnerSymptoms(incident: Incident): string[] {
  return incident.stats.runners.map((trace) => {
    const model = trace.modelPath ? ` (${code(trace.modelPath)})` : "";
    const share = runnerCpuShare(trace);
    const delta = trace.lastCpuSeconds - trace.firstCpuSeconds;
    let verdict = "";
    if (share !== undefined) {
      const over = `over ${humanDuration(trace.lastWall - trace.firstWall)}`;
      if (share < 0.02) verdict = `; CPU time flat (+${delta.toFixed(2)} s ${over}): not computing`;
      else if (share > 0.8)
        verdict = `; CPU time +${delta.toFixed(1)} s ${over}: spinning at ${percent(share)} of a core`;
      else verdict = `; CPU time +${delta.toFixed(1)} s ${over} (${percent(share)} of a core)`;
    }
    return (
      `- **Runner** pid ${trace.pid}${model}: state ${trace.states.map(code).join(" → ")}${stateNote(trace.states)}, ` +
      `CPU time ${trace.firstCpuSeconds.toFixed(2)} s → ${trace.lastCpuSeconds.toFixed(2)} s${verdict}.`
    );
  });
}

function symptoms(incident: Incident): string {
  const sample = worstSample(incident);
  const lines: Array<string | undefined> = [
    apiSymptom(incident),
    psSymptom(incident, sample),
    canarySymptom(incident),
  ];
  if (incident.stats.maxFrozenForMs > 0) {
    lines.push(`- **Frozen**: demand without progress for ${humanDuration(incident.stats.maxFrozenForMs)}.`);
  }
  lines.push(gpuSymptom(incident, sample), ...runnerSymptoms(incident));
  if (incident.stats.wedgedGpuEvidence.length) {
    lines.push(
      `- **Journal** (GPU/driver errors): ${incident.stats.wedgedGpuEvidence.map(code).join(", ")}.`,
    );
  }
  const kept = incident.evidence.length;
  lines.push(
    `- **Evidence**: ${incident.stats.ticks} ticks observed, ${kept} kept in full` +
      `${incident.before.length ? `, plus ${incident.before.length} healthy ticks before` : ""}.`,
  );
  return lines.filter((l): l is string => l !== undefined).join("\n");
}

interface TimelineRow {
  wall: number;
  order: number;
  event: string;
  detail: string;
}

function timeline(incident: Incident): string {
  const rows: TimelineRow[] = [];
  for (const t of incident.transitions) {
    rows.push({
      wall: t.wall,
      order: 0,
      event: t.from === "none" ? `state \`${t.to}\`` : `state \`${t.from}\` → \`${t.to}\``,
      detail: escapeMarkdown(t.reason),
    });
  }
  for (const r of incident.requests) {
    const on = r.pid !== undefined ? ` pid ${r.pid}${r.model ? ` (${code(r.model)})` : ""}` : "";
    rows.push({
      wall: r.wall,
      order: 1,
      event: `decided ${r.action}${on}`,
      detail: escapeMarkdown(r.reason),
    });
  }
  for (const a of incident.actions) {
    const what = [a.detail, a.error]
      .filter((x): x is string => !!x)
      .map(escapeMarkdown)
      .join("; ");
    rows.push({
      wall: a.startedWall,
      order: 2,
      event: `${a.action} **${a.result}**`,
      detail: `took ${humanDuration(a.durationMs)}${what ? `; ${what}` : ""}`,
    });
  }
  if (incident.verification) {
    const v = incident.verification;
    rows.push({
      wall: v.wall,
      order: 3,
      event: "verification canary ok",
      detail: `${code(v.model)} first token in ${humanDuration(v.ttftMs ?? v.durationMs)}`,
    });
  }
  for (const wall of incident.resumedWalls) {
    rows.push({ wall, order: 4, event: "watchdog restarted", detail: "kept following this incident" });
  }
  if (incident.closedWall !== undefined) {
    rows.push({ wall: incident.closedWall, order: 5, event: `closed: ${incident.outcome}`, detail: "" });
  }
  if (incident.healthyAgainWall !== undefined) {
    rows.push({ wall: incident.healthyAgainWall, order: 6, event: "healthy again", detail: "" });
  }
  rows.sort((a, b) => a.wall - b.wall || a.order - b.order);
  const table = rows.map((r) => `| ${iso(r.wall)} | ${r.event} | ${r.detail} |`);
  return ["| time (UTC) | event | detail |", "|---|---|---|", ...table].join("\n");
}

function lastCanary(incident: Incident): EvidenceSample["canaries"][number] | undefined {
  for (const sample of [...incident.evidence].reverse()) {
    const canary = sample.canaries.at(-1);
    if (canary) return canary;
  }
  return undefined;
}

function describeCanary(canary: EvidenceSample["canaries"][number]): string {
  if (canary.outcome === "ok") return `answered in ${humanDuration(canary.ttftMs ?? canary.durationMs)}`;
  if (canary.outcome === "timeout") return `got no token in ${humanDuration(canary.durationMs)}`;
  return `failed (${escapeMarkdown(canary.error ?? (canary.status ? `HTTP ${canary.status}` : "error"))})`;
}

function verification(incident: Incident): string {
  const v = incident.verification;
  if (v && incident.outcome !== "exhausted") {
    const after =
      v.afterActionMs !== undefined && v.afterAction
        ? `, ${humanDuration(v.afterActionMs)} after the ${v.afterAction} finished`
        : "";
    return (
      `A canary generation on ${code(v.model)} got its first token in ${humanDuration(v.ttftMs ?? v.durationMs)} ` +
      `at ${iso(v.wall)}${after}: the model answers again.`
    );
  }
  if (incident.outcome === "open") return "Not verified yet: the incident is still open.";
  const canary = lastCanary(incident);
  const canaryText = canary ? ` The last canary on ${code(canary.model)} ${describeCanary(canary)}.` : "";
  if (incident.outcome === "exhausted") {
    const tried = incident.actions.length
      ? `${incident.actions.length} action${incident.actions.length === 1 ? "" : "s"} (${incident.actions
          .map((a) => `${a.action}: ${a.result}`)
          .join(", ")}) did not bring it back.`
      : "No action could be taken.";
    return `Recovery was not proven: ${tried}${canaryText}`;
  }
  return `No canary proved the recovery; the detector judged the target healthy: ${escapeMarkdown(incident.last.reason)}.${canaryText}`;
}

function finalStatus(incident: Incident): string {
  const { last } = incident;
  const budget = `Budget: ${last.budget.remaining} of ${last.budget.max} actions left.`;
  const lasted =
    incident.closedWall !== undefined
      ? ` after ${humanDuration(incident.closedWall - incident.openedWall)}`
      : "";
  switch (incident.outcome) {
    case "healed":
      return `**Healed**${lasted}: \`healthy\` since ${iso(incident.closedWall ?? last.wall)}. ${budget}`;
    case "resolved-by-itself":
      return `**Resolved by itself**${lasted}, without any action: \`healthy\` since ${iso(incident.closedWall ?? last.wall)}. ${budget}`;
    case "open":
      return `**Open**: \`${last.state}\` at the last observation (${iso(last.wall)}): ${escapeMarkdown(last.reason)}. ${budget}`;
    case "exhausted": {
      const since = `**Exhausted** at ${iso(incident.closedWall ?? last.wall)}: the watchdog stopped acting and keeps observing.`;
      const now =
        incident.healthyAgainWall !== undefined
          ? `The target was \`healthy\` again at ${iso(incident.healthyAgainWall)}.`
          : `Still \`${last.state}\` at the last observation (${iso(last.wall)}): ${escapeMarkdown(last.reason)}.`;
      return `${since} ${now} ${budget}`;
    }
  }
}

function nextSteps(incident: Incident): string {
  const steps: string[] = [];
  const { stats } = incident;
  const restartDidNotHelp =
    incident.outcome === "exhausted" &&
    incident.actions.some((a) => a.action === "restart" && a.result === "success");
  const wedged = stats.wedgedGpuEvidence.length > 0 || restartDidNotHelp;
  if (wedged) {
    steps.push(
      "**The GPU or its driver looks wedged** (FAILURE-MODES F8; ollama #5464, #10053, #8271, #3489): " +
        "restarting Ollama cannot fix that. Check `nvidia-smi` (does it hang or error?), `dmesg` for " +
        "`NVRM`/`Xid` lines and `journalctl -u ollama` for `cudart init failure` or `CUDA error`; then reload " +
        "the driver (`rmmod nvidia_uvm && modprobe nvidia_uvm`) or reboot the host.",
    );
  }
  if (incident.outcome === "exhausted") {
    steps.push(
      `**Remediation budget spent** after ${incident.actions.length} action${incident.actions.length === 1 ? "" : "s"}: ` +
        "find out why they did not heal it before raising `remediation.budget.max` " +
        "(`journalctl -u ollama -n 200`, `ollama-watchdog status`). The watchdog acts again once the budget window frees a slot; " +
        "a manual `systemctl restart ollama` is safe once the GPU is known to be fine.",
    );
  }
  if (incident.recentIncidents >= 2) {
    steps.push(
      `**Repeated trouble**: ${incident.recentIncidents + 1} incidents on this target within 24 h. Upgrade Ollama ` +
        "(runner deadlocks are fixed release by release, e.g. PR #12566; see #1863, #12069, #15258, #15950) and note the " +
        "model, version and `OLLAMA_NUM_PARALLEL` of each freeze.",
    );
  }
  const shares = stats.runners.map(runnerCpuShare).filter((s): s is number => s !== undefined);
  // A wedged GPU explains a still runner; the runner tips would point the reader the wrong way.
  const frozen = !wedged && (peakProblemState(incident) === "frozen" || stats.maxFrozenForMs > 0);
  if (frozen && shares.some((s) => s > 0.8)) {
    steps.push(
      "**Runner spinning** (F2: a full core busy, no tokens; #3552, #9382, #6380): check whether the model fell back " +
        "to the CPU (`ollama ps`, PROCESSOR column) and the journal for CUDA errors.",
    );
  } else if (frozen && shares.some((s) => s < 0.02)) {
    steps.push(
      "**Runner deadlock** (F1: runner alive, CPU time flat, GPU idle; #1863, #12069, #15258, #15950, " +
        "llama.cpp #16448): the known hang. If it recurs, upgrade Ollama and report the model and version.",
    );
  }
  if (stats.stuckStopping.length) {
    steps.push(
      '**Stuck "Stopping…"** (F4: #7779, #10119, #12179, #14364): a model stayed listed after its expiry and kept ' +
        "its VRAM; check `ollama ps` and whether new loads wait behind it.",
    );
  }
  if (stats.apiDownTicks > 0 || incident.worstState === "down") {
    steps.push(
      "**API down** (F6/F7): read `journalctl -u ollama` around the opening time for a crash, an out-of-memory kill " +
        "or a port still held by an old process (#14364); systemd's `Restart=always` may have restarted it first.",
    );
  }
  for (const kind of ["kill-runner", "restart"] as const) {
    if (incident.actions.some((a) => a.action === kind && a.result === "failure")) {
      steps.push(
        kind === "kill-runner"
          ? "**kill-runner failed**: the watchdog may lack the right to signal Ollama's runner (CAP_KILL or its user); run `ollama-watchdog doctor`."
          : "**restart failed**: check the restart method (systemd unit name and polkit rule, Docker socket, command) with `ollama-watchdog doctor`.",
      );
    }
  }
  if (incident.actions.some((a) => a.result === "dry-run")) {
    steps.push(
      "**Dry run**: actions were decided but not carried out (`remediation.dryRun: true`). Turn it off to let the watchdog heal.",
    );
  }
  if (incident.outcome === "resolved-by-itself") {
    steps.push(
      "**Cleared without action**: if such short episodes recur, look for load that delays canaries (B4: queueing " +
        "behind `OLLAMA_NUM_PARALLEL=1`) before tuning `detection.freezeAfter` or `detection.canary.timeout`.",
    );
  }
  steps.push(`Full evidence: \`ollama-watchdog incidents show ${incident.id} --json\`.`);
  return steps.map((s) => `- ${s}`).join("\n");
}
