import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "../../../src/config/duration.js";
import { ConfigError, parseConfig, parseConfigText } from "../../../src/config/load.js";
import { loopLivenessMs, urlFromOllamaHost } from "../../../src/config/schema.js";

function problemsOf(text: string): string[] {
  try {
    parseConfigText(text, {});
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("config", () => {
  it("fills every default of DESIGN.md §6 from an empty document", () => {
    const config = parseConfig({}, {});
    expect(config.interval).toBe(15_000);
    expect(config.listen).toBe("127.0.0.1:11464");
    expect(config.targets).toEqual([
      {
        name: "default",
        url: "http://127.0.0.1:11434",
        restart: { systemd: { unit: "ollama.service" } },
        processes: { server: "ollama serve", runner: "ollama runner|ollama_llama_server|llama-server" },
      },
    ]);
    expect(config.detection).toMatchObject({
      apiTimeout: 5000,
      downAfter: 3,
      freezeAfter: 60_000,
      gpuBusyAbove: 0.05,
      startupGrace: 120_000,
      loadGrace: 300_000,
      canary: { every: 60_000, timeout: 30_000, prompt: "hi" },
    });
    expect(config.remediation).toEqual({
      ladder: ["kill-runner", "restart"],
      cooldown: 60_000,
      budget: { max: 3, window: 3_600_000 },
      verifyWithin: 120_000,
      drainFor: 0,
      dryRun: false,
    });
    expect(config.gpu).toEqual({
      backend: "auto",
      nvidiaSmi: "nvidia-smi",
      rocmSmi: "rocm-smi",
      timeout: 10_000,
    });
  });

  it("takes the default target from OLLAMA_HOST", () => {
    expect(parseConfig({}, { OLLAMA_HOST: "0.0.0.0:11500" }).targets[0]?.url).toBe("http://127.0.0.1:11500");
    expect(urlFromOllamaHost("gpu-box")).toBe("http://gpu-box:11434");
    expect(urlFromOllamaHost("https://ollama.example:8443")).toBe("https://ollama.example:8443");
  });

  it.each([
    ["remediation:\n  cooldown: fast\n", 'remediation.cooldown: expected a duration like "60s", got "fast"'],
    ["foo: 1\n", "foo: unknown key"],
    ["detection:\n  canary:\n    evry: 10s\n", "detection.canary.evry: unknown key"],
    [
      "targets:\n  - name: a\n    url: http://x:1\n    restart: {}\n",
      "targets.0.restart: expected exactly one of systemd, docker, command",
    ],
    ["gpu:\n  backend: cuda\n", "gpu.backend:"],
    ["detection:\n  gpuBusyAbove: 5\n", "detection.gpuBusyAbove:"],
    [
      "targets:\n  - {name: a, url: 'http://x:1'}\n  - {name: a, url: 'http://y:1'}\n",
      "targets: target names must be unique",
    ],
    ["interval: [\n", "invalid YAML"],
    ["interval: 15s\ninterval: 20s\n", "invalid YAML: duplicated mapping key"],
    ["interval: 15s\n---\ninterval: 20s\n", "invalid YAML: expected one document, found 2"],
    ["5\n", "(root): expected Object but received 5"],
    ["interval: 15\n", 'interval: expected a duration like "60s", got 15'],
  ])("rejects %j naming the key and the reason", (text, expected) => {
    expect(problemsOf(text).join("\n")).toContain(expected);
  });

  it.each(["", "# nothing set yet\n", "---\n"])("reads %j (no settings) as the defaults", (text) => {
    expect(parseConfigText(text, {})).toEqual(parseConfigText("{}", {}));
  });

  it("keeps a date-like or yes/no value a string (YAML 1.2 core schema, no timestamps)", () => {
    expect(problemsOf("stateDir: 2026-01-01\n")).toEqual(["stateDir: expected an absolute path"]);
    expect(() => parseConfigText("remediation:\n  dryRun: yes\n", {})).toThrow(/remediation.dryRun/);
  });

  it("names every unknown key, not only the first of each object", () => {
    expect(
      problemsOf(
        "foo: 1\nbar: 2\ntargets:\n  - {name: a, url: 'http://x:1', zz: 1, restart: {systemd: {unit: u.service, q: 1}}}\n",
      ),
    ).toEqual([
      "foo: unknown key",
      "bar: unknown key",
      "targets.0.zz: unknown key",
      "targets.0.restart.systemd.q: unknown key",
    ]);
  });

  // Issue #11 M3: each of these passed `config check` before and then misbehaved at run time
  // (timers overflowing to 1 ms, a budget without a window, a crash on listen).
  it.each([
    ["interval: 30d\n", "interval: must be between 100ms and 1h"],
    ["detection: {canary: {timeout: 30d}}\n", "detection.canary.timeout: must be between 100ms and 1h"],
    ["remediation: {budget: {window: 30d}}\n", "remediation.budget.window: must be between 1s and 24.8d"],
    ["remediation: {budget: {window: 0s}}\n", "remediation.budget.window: must be between 1s and 24.8d"],
    [
      "remediation: {cooldown: 2h, budget: {window: 1h}}\n",
      "remediation.budget.window: must be at least remediation.cooldown (2h)",
    ],
    [
      "detection: {freezeAfter: 20s}\n",
      "detection.canary.timeout: must be shorter than detection.freezeAfter (20s)",
    ],
    [
      "remediation: {verifyWithin: 30s}\n",
      "remediation.verifyWithin: must be longer than detection.canary.timeout (30s)",
    ],
    ["interval: 0ms\n", "interval: must be between 100ms and 1h"],
    ["interval: 99999999999999999999999h\n", "interval: must be between 100ms and 1h"],
    ["detection: {downAfter: 0}\n", "detection.downAfter: expected a whole number from 1 to 100"],
    ["detection: {gpuBusyAbove: .nan}\n", "detection.gpuBusyAbove: expected number but received NaN"],
    ["detection: {gpuBusyAbove: 1.5}\n", "detection.gpuBusyAbove: expected a number from 0 to 1"],
    ["remediation: {budget: {max: -1}}\n", "remediation.budget.max: expected a whole number from 0 to 1000"],
    ["remediation: {ladder: [restart, restart]}\n", "remediation.ladder: each step at most once"],
    ["listen: 127.0.0.1:99999\n", "listen: port must be from 1 to 65535"],
    ["stateDir: var/lib/x\n", "stateDir: expected an absolute path"],
    ['textfile: "/srv/x\\nExecStartPre=/bin/id"\n', "textfile: must not contain control characters"],
    ["listen: ':80'\n", 'listen: expected "host:port"'],
    ["targets: [{name: a, url: 'http://x:0'}]\n", "targets.0.url: port must be from 1 to 65535"],
    ["targets: [{name: a, url: 'http://x:70000'}]\n", "targets.0.url: expected a URL"],
    ["targets: [{name: a, url: 'ftp://x:1'}]\n", "targets.0.url: expected http:// or https://"],
    ["targets: [{name: a, url: 'http://u:secret@x:1'}]\n", "targets.0.url: must not contain credentials"],
    ["targets: [{name: '..', url: 'http://x:1'}]\n", "targets.0.name: '.' and '..' are not names"],
    [
      "targets: [{name: a, url: 'http://x:1', processes: {runner: ''}}]\n",
      "targets.0.processes.runner: matches every process",
    ],
    [
      "targets: [{name: a, url: 'http://x:1', processes: {server: '.*'}}]\n",
      "targets.0.processes.server: matches every process",
    ],
    [
      "targets: [{name: a, url: 'http://x:1', processes: {server: '('}}]\n",
      "targets.0.processes.server: not a valid regular expression",
    ],
    [
      "targets: [{name: a, url: 'http://x:1', restart: {docker: {container: 'a/b'}}}]\n",
      "targets.0.restart.docker.container:",
    ],
    [
      "targets: [{name: a, url: 'http://x:1', restart: {docker: {container: c, socket: rel.sock}}}]\n",
      "targets.0.restart.docker.socket: expected an absolute path",
    ],
    [
      "targets: [{name: a, url: 'http://x:1', restart: {command: {argv: [\"a\\0b\"]}}}]\n",
      "targets.0.restart.command.argv.0: must not contain a NUL",
    ],
  ])("rejects %j (M3 bounds and relations)", (text, expected) => {
    expect(problemsOf(text).join("\n")).toContain(expected);
  });

  // Issue #11 M8: a unit name is rendered into the polkit rule and the unit file (root-owned).
  it.each([
    'ollama.service"]; polkit.addRule(function () { return polkit.Result.YES; }); var x = ["',
    "ollama.service\nExecStartPre=/bin/sh -c id",
    "ollama service",
    "",
    `${"a".repeat(250)}.service`,
  ])("rejects the unit name %j", (unit) => {
    const problems = (() => {
      try {
        parseConfig(
          { targets: [{ name: "a", url: "http://x:1", restart: { systemd: { unit } }, journalUnit: unit }] },
          {},
        );
      } catch (error) {
        return (error as ConfigError).problems;
      }
      return [];
    })();
    expect(problems).toEqual([
      expect.stringMatching(/^targets\.0\.restart\.systemd\.unit: expected a systemd unit name/),
      expect.stringMatching(/^targets\.0\.journalUnit: expected a systemd unit name/),
    ]);
  });

  it("accepts the boundary values themselves", () => {
    const config = parseConfigText(
      [
        "interval: 100ms",
        "listen: '[::1]:65535'",
        "detection: {apiTimeout: 100ms, freezeAfter: 200ms, canary: {every: 100ms, timeout: 199ms}, startupGrace: 0s, loadGrace: 0s, downAfter: 100, gpuBusyAbove: 1}",
        "remediation: {cooldown: 0s, verifyWithin: 1s, budget: {max: 0, window: 24.8d}}",
        "targets: [{name: a, url: 'https://x:1/ollama/', journalUnit: 'ollama@gpu\\x2d0.service'}]",
      ].join("\n"),
      {},
    );
    expect(config.interval).toBe(100);
    expect(config.remediation.budget.window).toBe(2_142_720_000);
    expect(config.targets[0]?.url).toBe("https://x:1/ollama");
  });

  it("accepts several targets with each restart kind", () => {
    const config = parseConfigText(
      [
        "targets:",
        "  - name: gpu0",
        "    url: http://127.0.0.1:11434",
        "  - name: box",
        "    url: http://127.0.0.1:11435",
        "    restart: { docker: { container: ollama } }",
        "  - name: cmd",
        "    url: http://127.0.0.1:11436",
        "    restart: { command: { argv: [/usr/local/bin/restart-ollama, --now], timeout: 5s } }",
      ].join("\n"),
      {},
    );
    expect(config.targets.map((t) => t.restart)).toEqual([
      { systemd: { unit: "ollama.service" } },
      { docker: { container: "ollama", socket: "/var/run/docker.sock", timeout: 60_000 } },
      { command: { argv: ["/usr/local/bin/restart-ollama", "--now"], timeout: 5000 } },
    ]);
  });
});

describe("the loop's liveness window", () => {
  it("holds the slowest tick the config allows: interval 3s with the default apiTimeout is accepted", () => {
    const config = parseConfigText("interval: 3s\n", {});
    expect(config.detection.apiTimeout).toBe(5000);
    // interval + apiTimeout + 2 s + interval / 2
    expect(loopLivenessMs(config.interval, config.detection.apiTimeout)).toBe(11_500);
    expect(loopLivenessMs(15_000, 5000)).toBe(45_000);
    expect(loopLivenessMs(1000, 60_000)).toBe(63_500);
  });
});

describe("durations", () => {
  it.each([
    ["500ms", 500],
    ["15s", 15_000],
    ["1.5h", 5_400_000],
    ["1m30s", 90_000],
    ["1h30m", 5_400_000],
    ["2m500ms", 120_500],
    ["1d12h", 129_600_000],
  ])("%s is %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", "15", "1m 30s", "m30s", "1m30", "-1s", "1e3s", "60S", "1.s"])(
    "%j is not a duration",
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );

  it("reads back what it writes (messages quote durations the config accepts)", () => {
    for (const ms of [1, 500, 1000, 90_000, 3_600_000, 5_400_000, 5_430_000, 86_400_000])
      expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
});
