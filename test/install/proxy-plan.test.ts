import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig, parseConfigText } from "../../src/config/load.js";
import { runInstall, runUninstall } from "../../src/install/installer.js";
import { defaultLayout } from "../../src/install/layout.js";
import {
  buildInstallSpec,
  type Observed,
  type Plan,
  planInstall,
  planUninstall,
} from "../../src/install/plan.js";
import { DROP_IN_NAME, proxyDropIns, withDefaultProxy } from "../../src/install/proxy.js";
import type { Exec } from "../../src/install/system.js";

/** install --proxy (src/install/proxy.ts): the plan, the drop-in, the refusals, a staged run. */
const programs = { nodePath: "/usr/bin/node", cliPath: "/usr/lib/node_modules/ollama-watchdog/dist/cli.js" };
const layout = defaultLayout(programs);
const DROP_IN = `/etc/systemd/system/ollama.service.d/${DROP_IN_NAME}`;

const summary = (plan: Plan) =>
  plan.steps.map((s) => (s.kind === "run" ? s.argv.join(" ") : `${s.kind} ${"path" in s ? s.path : ""}`));

/** What the system looks like after the plan ran (files written, unit running). */
function afterApplying(plan: Plan): Observed {
  const paths: Observed["paths"] = {};
  for (const step of plan.steps) {
    if (step.kind === "write-file")
      paths[step.path] = { exists: true, content: step.content, mode: step.mode };
  }
  paths["/var/lib/ollama-watchdog"] = { exists: true, mode: 0o40750, uid: 990, gid: 990 };
  paths["/etc/systemd/system/ollama.service.d"] = { exists: true, mode: 0o40755 };
  return {
    paths,
    user: { uid: 990, gid: 990 },
    unit: { loaded: true, enabled: true, active: true },
    manifest: JSON.parse(paths[layout.manifestPath]?.content as string),
  };
}

describe("install --proxy: the drop-in", () => {
  it("moves the Ollama unit to the target's url and leaves 11434 to the guard", () => {
    const config = withDefaultProxy(parseConfig({}, {}));
    expect(config.targets[0]?.url).toBe("http://127.0.0.1:11435");
    expect(config.targets[0]?.proxy?.listen).toBe("127.0.0.1:11434");
    const { dropIns, problems } = proxyDropIns(config);
    expect(problems).toEqual([]);
    expect(dropIns).toHaveLength(1);
    expect(dropIns[0]).toMatchObject({
      unit: "ollama.service",
      path: DROP_IN,
      ollamaHost: "127.0.0.1:11435",
    });
    expect(dropIns[0]?.content).toContain("[Service]\nEnvironment=OLLAMA_HOST=127.0.0.1:11435\n");
  });

  it("refuses, naming the key, what it cannot move", () => {
    const problems = (yaml: string) => proxyDropIns(parseConfigText(yaml, {})).problems.join("\n");
    expect(problems("targets: [{ name: a, url: http://127.0.0.1:11434 }]")).toMatch(
      /^targets: --proxy needs a target with proxy/,
    );
    expect(
      problems("targets: [{ name: a, url: http://127.0.0.1:11434, proxy: { listen: 127.0.0.1:11434 } }]"),
    ).toMatch(/^targets\[0\]\.url: Ollama must move to another port/);
    expect(
      problems("targets: [{ name: a, url: http://10.0.0.5:11435, proxy: { listen: 127.0.0.1:11434 } }]"),
    ).toMatch(/^targets\[0\]\.url: --proxy moves a local Ollama/);
    expect(
      problems(
        'targets: [{ name: a, url: http://127.0.0.1:11435, proxy: { listen: 127.0.0.1:11434 }, restart: { command: { argv: ["true"] } } }]',
      ),
    ).toMatch(/^targets\[0\]\.restart: /);
  });
});

describe("install --proxy: the live plan (pure)", () => {
  const config = withDefaultProxy(parseConfig({}, {}));
  const spec = buildInstallSpec({
    config,
    layout,
    configGiven: false,
    proxyDropIns: proxyDropIns(config).dropIns,
  });

  it("moves Ollama before the watchdog starts on its address; uninstall moves it back", () => {
    const plan = planInstall(spec, { paths: {} }, { live: true });
    const steps = summary(plan);
    expect(steps).toContain(`write-file ${DROP_IN}`);
    const restartOllama = steps.indexOf("systemctl try-restart ollama.service");
    expect(steps.indexOf("systemctl daemon-reload")).toBeLessThan(restartOllama);
    expect(restartOllama).toBeLessThan(steps.indexOf("systemctl start ollama-watchdog.service"));
    const config = plan.steps.find((s) => s.kind === "write-file" && s.path === layout.configPath);
    expect(config?.kind === "write-file" && config.content).toContain("url: http://127.0.0.1:11435");
    expect(config?.kind === "write-file" && config.content).toContain("listen: 127.0.0.1:11434");

    const installed = afterApplying(plan);
    expect(installed.manifest?.movedUnits).toEqual(["ollama.service"]);
    expect(installed.manifest?.files).toContain(DROP_IN);
    expect(installed.manifest?.createdDirs).toContain("/etc/systemd/system/ollama.service.d");
    expect(planInstall(spec, installed, { live: true }).steps).toEqual([]);

    const uninstall = summary(
      planUninstall(installed.manifest, installed, { live: true, manifestPath: layout.manifestPath }),
    );
    const removed = uninstall.indexOf(`remove-file ${DROP_IN}`);
    const reload = uninstall.indexOf("systemctl daemon-reload");
    const back = uninstall.indexOf("systemctl try-restart ollama.service");
    expect(uninstall[0]).toBe("systemctl disable --now ollama-watchdog.service");
    expect(removed).toBeGreaterThan(0);
    expect(reload).toBeGreaterThan(removed);
    expect(back).toBeGreaterThan(reload);
  });

  it("a later install without a proxy moves Ollama back", () => {
    const installed = afterApplying(planInstall(spec, { paths: {} }, { live: true }));
    const plain = buildInstallSpec({ config: parseConfig({}, {}), layout, configGiven: true });
    const steps = summary(planInstall(plain, installed, { live: true }));
    expect(steps).toContain(`remove-file ${DROP_IN}`);
    expect(steps).toContain("systemctl try-restart ollama.service");
    expect(steps.indexOf("systemctl try-restart ollama.service")).toBeLessThan(
      steps.indexOf("systemctl restart ollama-watchdog.service"),
    );
  });
});

describe("install --proxy on a staging root", () => {
  let root: string;
  let output: string[];
  const neverExec: Exec = async (argv) => {
    throw new Error(`--root must run nothing, but ran ${argv.join(" ")}`);
  };
  const base = () => ({
    root,
    layout: programs,
    exec: neverExec,
    print: (l: string) => output.push(l),
    env: {},
  });
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "owd-proxy-root-"));
    output = [];
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("writes the drop-in and a config with the guard on 11434; uninstall removes both", async () => {
    expect(await runInstall({ ...base(), proxy: true })).toBe(0);
    const dropIn = readFileSync(join(root, DROP_IN), "utf8");
    expect(dropIn).toContain("Environment=OLLAMA_HOST=127.0.0.1:11435");
    const config = parseConfigText(readFileSync(join(root, layout.configPath), "utf8"), {});
    expect(config.targets[0]).toMatchObject({
      url: "http://127.0.0.1:11435",
      proxy: { listen: "127.0.0.1:11434", holdFor: 60_000, maxTokenGap: null },
    });
    expect(output.join("\n")).toContain("systemctl restart ollama.service");

    expect(await runUninstall(base())).toBe(0);
    expect(existsSync(join(root, DROP_IN))).toBe(false);
    expect(existsSync(join(root, "etc/systemd/system/ollama.service.d"))).toBe(false);
  });

  it("an existing config without a proxy is refused with exit 2, nothing written", async () => {
    const path = join(root, "plain.yaml");
    writeFileSync(path, "targets: [{ name: a, url: http://127.0.0.1:11434 }]\n");
    expect(await runInstall({ ...base(), config: path, proxy: true })).toBe(2);
    expect(output.join("\n")).toContain(`${path}: targets: --proxy needs a target with proxy`);
    expect(existsSync(join(root, "etc"))).toBe(false);
  });
});
