import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig, parseConfigText } from "../../../src/config/load.js";
import { urlFromOllamaHost } from "../../../src/config/schema.js";

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
    ["5\n", "(root): expected Object but received 5"],
    ["interval: 15\n", "interval: expected string but received 15"],
  ])("rejects %j naming the key and the reason", (text, expected) => {
    expect(problemsOf(text).join("\n")).toContain(expected);
  });

  it("names every unknown key, not only the first of each object", () => {
    expect(
      problemsOf(
        "foo: 1\nbar: 2\ntargets:\n  - {name: a, url: 'http://x:1', zz: 1, restart: {systemd: {unit: u, q: 1}}}\n",
      ),
    ).toEqual([
      "foo: unknown key",
      "bar: unknown key",
      "targets.0.zz: unknown key",
      "targets.0.restart.systemd.q: unknown key",
    ]);
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
