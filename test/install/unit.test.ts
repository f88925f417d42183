import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig, parseConfigText } from "../../src/config/load.js";
import { renderDefaultConfig, renderPolkitRule, renderSysusers } from "../../src/install/files.js";
import { defaultLayout } from "../../src/install/layout.js";
import {
  fullUnitName,
  renderDefaultUnit,
  renderUnit,
  restartUnitsOf,
  unitInputsFor,
  watchdogSecFor,
} from "../../src/install/unit.js";
import { ROOT } from "../support/paths.js";

/** The committed unit. Regenerate it with: UPDATE_DEPLOY=1 npx vitest run test/install/unit.test.ts */
const DEPLOYED_UNIT = join(ROOT, "deploy/systemd/ollama-watchdog.service");
const defaults = () => parseConfig({}, {});
const scratch = mkdtempSync(join(tmpdir(), "owd-unit-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function systemdAnalyze(args: string[]): { output: string; status: number | null } {
  const result = spawnSync("systemd-analyze", args, { encoding: "utf8", timeout: 30_000 });
  return { output: `${result.stdout ?? ""}${result.stderr ?? ""}`, status: result.status };
}

describe("the systemd unit", () => {
  it("deploy/systemd/ollama-watchdog.service is the render for the documented defaults", () => {
    const rendered = renderDefaultUnit(defaults());
    if (process.env.UPDATE_DEPLOY === "1") writeFileSync(DEPLOYED_UNIT, rendered);
    expect(readFileSync(DEPLOYED_UNIT, "utf8")).toBe(rendered);
  });

  it("has the notify/watchdog/hardening directives DESIGN.md §9 asks for", () => {
    const unit = renderDefaultUnit(defaults());
    for (const line of [
      "Type=notify",
      "NotifyAccess=all",
      "WatchdogSec=45s",
      "Restart=on-failure",
      "User=ollama-watchdog",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "ReadWritePaths=/var/lib/ollama-watchdog",
      "CapabilityBoundingSet=CAP_KILL",
      "AmbientCapabilities=CAP_KILL",
      "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
      "ExecStart=/usr/bin/node /usr/lib/node_modules/ollama-watchdog/dist/cli.js run --config /etc/ollama-watchdog/config.yaml",
    ]) {
      expect(unit.split("\n")).toContain(line);
    }
    expect(unit).not.toMatch(/^User=root/m);
  });

  it("systemd-analyze verify prints nothing for it", () => {
    const defaultsUnit = join(scratch, "ollama-watchdog.service");
    writeFileSync(defaultsUnit, readFileSync(DEPLOYED_UNIT, "utf8"));
    const verified = systemdAnalyze(["verify", "--man=no", defaultsUnit]);
    expect(verified.output).toBe("");
    expect(verified.status).toBe(0);

    // And for the render install writes from a checkout (ExecStart must exist: this node, this CLI).
    const dir = mkdtempSync(join(scratch, "checkout-"));
    const live = join(dir, "ollama-watchdog.service");
    const layout = defaultLayout({ nodePath: process.execPath, cliPath: join(ROOT, "dist/cli.js") });
    const config = parseConfig(
      { interval: "1s", textfile: "/var/lib/node-exporter/ollama.prom", gpu: { backend: "none" } },
      {},
    );
    writeFileSync(live, renderUnit(unitInputsFor(config, layout)));
    expect(systemdAnalyze(["verify", "--man=no", live]).output).toBe("");
  });

  it("systemd-analyze security rates it OK (exposure ≤ 3.0)", () => {
    const file = join(scratch, "security", "ollama-watchdog.service");
    execFileSync("mkdir", ["-p", join(scratch, "security")]);
    writeFileSync(file, readFileSync(DEPLOYED_UNIT, "utf8"));
    const { output } = systemdAnalyze(["security", "--offline=true", "--no-pager", file]);
    const exposure = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(output)?.[1]);
    process.stdout.write(`systemd-analyze security: overall exposure ${exposure}\n`);
    expect(exposure).toBeGreaterThan(0);
    expect(exposure).toBeLessThanOrEqual(3.0);
  });

  it("watchdogSecFor: three intervals, three times the longest collector deadline, at least 10 s", () => {
    const cases: Array<[Record<string, unknown>, number]> = [
      [{}, 45],
      [{ interval: "1s", detection: { apiTimeout: "1s" }, gpu: { timeout: "1s" } }, 10],
      [{ interval: "1s", detection: { apiTimeout: "1s" }, gpu: { backend: "none" } }, 10],
      [{ interval: "1s", detection: { apiTimeout: "1s" } }, 30],
      [{ interval: "1m" }, 180],
      [{ interval: "5s", gpu: { timeout: "20s" } }, 60],
    ];
    for (const [document, seconds] of cases) expect(watchdogSecFor(parseConfig(document, {}))).toBe(seconds);
  });

  it("hides /dev (and the clock) only when no GPU tool needs it", () => {
    const noGpu = renderUnit(unitInputsFor(parseConfig({ gpu: { backend: "none" } }, {}), defaultLayout()));
    expect(noGpu).toMatch(/^PrivateDevices=yes$/m);
    expect(noGpu).toMatch(/^ProtectClock=yes$/m);
    const gpu = renderDefaultUnit(defaults());
    expect(gpu).toMatch(/^PrivateDevices=no$/m);
    expect(gpu).not.toMatch(/^ProtectClock=/m);
  });

  it("adds the textfile's directory to ReadWritePaths and the docker group for docker targets", () => {
    const config = parseConfig(
      {
        textfile: "/var/lib/prometheus/node-exporter/ollama.prom",
        targets: [{ name: "d", url: "http://127.0.0.1:11434", restart: { docker: { container: "ollama" } } }],
      },
      {},
    );
    const unit = renderUnit(unitInputsFor(config, defaultLayout()));
    expect(unit).toMatch(
      /^ReadWritePaths=\/var\/lib\/ollama-watchdog \/var\/lib\/prometheus\/node-exporter$/m,
    );
    expect(unit).toMatch(/^SupplementaryGroups=docker$/m);
  });
});

describe("the other files", () => {
  it("the polkit rule grants restart of exactly the configured units to exactly the service user", () => {
    const rule = renderPolkitRule("ollama-watchdog", ["ollama.service", "ollama-gpu1.service"]);
    expect(rule).toContain('action.id == "org.freedesktop.systemd1.manage-units"');
    expect(rule).toContain('subject.user == "ollama-watchdog"');
    expect(rule).toContain('action.lookup("verb") == "restart"');
    expect(rule).toContain('var units = ["ollama.service", "ollama-gpu1.service"];');
    // polkit 122 runs ES5 (duktape): no arrow functions, let/const or template strings.
    expect(rule).not.toMatch(/=>|\blet\b|\bconst\b|`/);
  });

  it("restart units are full unit names, deduplicated", () => {
    expect(fullUnitName("ollama")).toBe("ollama.service");
    expect(fullUnitName("ollama.service")).toBe("ollama.service");
    const config = parseConfig(
      {
        targets: [
          { name: "a", url: "http://127.0.0.1:1", restart: { systemd: { unit: "ollama" } } },
          { name: "b", url: "http://127.0.0.1:2", restart: { systemd: { unit: "ollama.service" } } },
        ],
      },
      {},
    );
    expect(restartUnitsOf(config)).toEqual(["ollama.service"]);
  });

  it("the sysusers line declares a system user without login", () => {
    expect(renderSysusers("ollama-watchdog", "/var/lib/ollama-watchdog")).toContain(
      'u ollama-watchdog - "Ollama watchdog" /var/lib/ollama-watchdog /usr/sbin/nologin',
    );
  });

  it("the default config is valid and means exactly the built-in defaults", () => {
    const env = { OLLAMA_HOST: "10.0.0.5:11434" };
    const config = parseConfig({}, env);
    expect(parseConfigText(renderDefaultConfig(config), {})).toEqual(config);
  });
});
