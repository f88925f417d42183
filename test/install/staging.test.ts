import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { runInstall, runUninstall } from "../../src/install/installer.js";
import { defaultLayout } from "../../src/install/layout.js";
import { buildInstallSpec, type Observed, planInstall, planUninstall } from "../../src/install/plan.js";
import type { Exec } from "../../src/install/system.js";
import { ROOT } from "../support/paths.js";

/** install/uninstall on a staging root (--root): files only, no systemctl, no user. */
const programs = { nodePath: "/usr/bin/node", cliPath: "/usr/lib/node_modules/ollama-watchdog/dist/cli.js" };
const neverExec: Exec = async (argv) => {
  throw new Error(`--root must run nothing, but ran ${argv.join(" ")}`);
};

let root: string;
let output: string[];
const print = (line: string) => output.push(line);
const base = () => ({ root, layout: programs, exec: neverExec, print, env: {} });

function tree(dir: string): string[] {
  const entries: string[] = [];
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      entries.push(relative(dir, path));
      if (statSync(path).isDirectory()) walk(path);
    }
  };
  walk(dir);
  return entries.sort();
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "owd-root-"));
  output = [];
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("install --root", () => {
  it("writes the unit, config, polkit rule, sysusers file, state dir and manifest, and nothing else", async () => {
    expect(await runInstall(base())).toBe(0);
    expect(tree(root)).toEqual([
      "etc",
      "etc/ollama-watchdog",
      "etc/ollama-watchdog/config.yaml",
      "etc/ollama-watchdog/install-manifest.json",
      "etc/polkit-1",
      "etc/polkit-1/rules.d",
      "etc/polkit-1/rules.d/50-ollama-watchdog.rules",
      "etc/systemd",
      "etc/systemd/system",
      "etc/systemd/system/ollama-watchdog.service",
      "etc/sysusers.d",
      "etc/sysusers.d/ollama-watchdog.conf",
      "var",
      "var/lib",
      "var/lib/ollama-watchdog",
    ]);
    const mode = (path: string) => statSync(join(root, path)).mode & 0o777;
    expect(mode("etc/ollama-watchdog/config.yaml")).toBe(0o640);
    expect(mode("var/lib/ollama-watchdog")).toBe(0o750);
    expect(mode("etc/systemd/system/ollama-watchdog.service")).toBe(0o644);
    expect(readFileSync(join(root, "etc/systemd/system/ollama-watchdog.service"), "utf8")).toBe(
      readFileSync(join(ROOT, "deploy/systemd/ollama-watchdog.service"), "utf8"),
    );
    expect(output.join("\n")).toContain(
      "systemctl daemon-reload && systemctl enable --now ollama-watchdog.service",
    );
  });

  it("is idempotent: a second run changes nothing and says so", async () => {
    await runInstall(base());
    const before = tree(root).map((p) => [p, statSync(join(root, p)).mtimeMs]);
    output = [];
    expect(await runInstall(base())).toBe(0);
    expect(output).toContain("nothing to change");
    expect(tree(root).map((p) => [p, statSync(join(root, p)).mtimeMs])).toEqual(before);
  });

  it("keeps an existing config and does not claim it", async () => {
    mkdirSync(join(root, "etc/ollama-watchdog"), { recursive: true });
    writeFileSync(join(root, "etc/ollama-watchdog/config.yaml"), "interval: 5s\n");
    expect(await runInstall(base())).toBe(0);
    expect(readFileSync(join(root, "etc/ollama-watchdog/config.yaml"), "utf8")).toBe("interval: 5s\n");
    expect(readFileSync(join(root, "etc/systemd/system/ollama-watchdog.service"), "utf8")).toMatch(
      /^WatchdogSec=30s$/m,
    );
    expect(await runUninstall(base())).toBe(0);
    expect(tree(root)).toEqual(["etc", "etc/ollama-watchdog", "etc/ollama-watchdog/config.yaml"]);
  });

  it("--dry-run prints every file with its content and writes nothing", async () => {
    expect(await runInstall({ ...base(), dryRun: true })).toBe(0);
    expect(tree(root)).toEqual([]);
    const text = output.join("\n");
    for (const file of [
      "/etc/systemd/system/ollama-watchdog.service",
      "/etc/ollama-watchdog/config.yaml",
      "/etc/polkit-1/rules.d/50-ollama-watchdog.rules",
      "/etc/sysusers.d/ollama-watchdog.conf",
      "/etc/ollama-watchdog/install-manifest.json",
    ]) {
      expect(text).toContain(`write ${root}${file}`);
    }
    expect(text).toContain("    | Type=notify");
    expect(text).toContain("    | polkit.addRule(function (action, subject) {");
    expect(text).toContain(`mkdir ${root}/var/lib/ollama-watchdog (0750 ollama-watchdog:ollama-watchdog)`);
  });

  it("uninstall removes exactly what install created, and an edited config is kept", async () => {
    mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
    writeFileSync(join(root, "etc/systemd/system/other.service"), "[Service]\nExecStart=/bin/true\n");
    await runInstall(base());
    expect(await runUninstall({ ...base(), dryRun: true })).toBe(0);
    expect(tree(root).length).toBeGreaterThan(5);
    expect(await runUninstall(base())).toBe(0);
    expect(tree(root)).toEqual([
      "etc",
      "etc/systemd",
      "etc/systemd/system",
      "etc/systemd/system/other.service",
    ]);

    await runInstall(base());
    writeFileSync(join(root, "etc/ollama-watchdog/config.yaml"), "interval: 2s\n");
    output = [];
    expect(await runUninstall(base())).toBe(0);
    expect(output.join("\n")).toContain("was edited since install: kept");
    expect(tree(root)).toContain("etc/ollama-watchdog/config.yaml");
  });

  it("uninstall without an install says there is nothing to remove", async () => {
    expect(await runUninstall(base())).toBe(0);
    expect(output.join("\n")).toContain("nothing that install created is here");
  });

  it("refuses a CLI under a home directory (ProtectHome hides it from the service)", async () => {
    const code = await runInstall({ ...base(), layout: { ...programs, cliPath: "/home/me/ow/dist/cli.js" } });
    expect(code).toBe(1);
    expect(output.join("\n")).toContain("under a home directory");
    expect(tree(root)).toEqual([]);
  });
});

describe("the live plan (pure)", () => {
  const layout = defaultLayout(programs);
  const spec = buildInstallSpec({ config: parseConfig({}, {}), layout, configGiven: false });

  it("on a bare system: files, user, state dir, then daemon-reload, enable, start", () => {
    const plan = planInstall(spec, { paths: {} }, { live: true });
    const summary = plan.steps.map((s) =>
      s.kind === "run" ? s.argv.join(" ") : `${s.kind} ${"path" in s ? s.path : ""}`,
    );
    expect(summary).toEqual([
      "write-file /etc/sysusers.d/ollama-watchdog.conf",
      "systemd-sysusers /etc/sysusers.d/ollama-watchdog.conf",
      "write-file /etc/ollama-watchdog/config.yaml",
      "write-file /etc/systemd/system/ollama-watchdog.service",
      "write-file /etc/polkit-1/rules.d/50-ollama-watchdog.rules",
      "make-dir /var/lib/ollama-watchdog",
      "write-file /etc/ollama-watchdog/install-manifest.json",
      "systemctl daemon-reload",
      "systemctl enable ollama-watchdog.service",
      "systemctl start ollama-watchdog.service",
    ]);
  });

  it("on an installed, running system: nothing", () => {
    const first = planInstall(spec, { paths: {} }, { live: true });
    const paths: Observed["paths"] = {};
    for (const step of first.steps) {
      if (step.kind === "write-file")
        paths[step.path] = { exists: true, content: step.content, mode: step.mode };
    }
    paths["/var/lib/ollama-watchdog"] = { exists: true, mode: 0o40750, uid: 990, gid: 990 };
    const observed: Observed = {
      paths,
      user: { uid: 990, gid: 990 },
      unit: { loaded: true, enabled: true, active: true },
    };
    const manifestText = paths[layout.manifestPath]?.content as string;
    observed.manifest = JSON.parse(manifestText);
    expect(planInstall(spec, observed, { live: true }).steps).toEqual([]);

    // A changed unit (new config) is written, reloaded and the running service restarted.
    const changed = buildInstallSpec({
      config: parseConfig({ interval: "5s" }, {}),
      layout,
      configGiven: true,
    });
    const steps = planInstall(changed, observed, { live: true }).steps.map((s) =>
      s.kind === "run" ? s.argv.join(" ") : s.kind,
    );
    expect(steps).toContain("systemctl daemon-reload");
    expect(steps).toContain("systemctl restart ollama-watchdog.service");

    // Uninstall stops and disables first, removes the user last among the system changes.
    const uninstall = planUninstall(observed.manifest, observed, {
      live: true,
      manifestPath: layout.manifestPath,
    });
    const kinds = uninstall.steps.map((s) => (s.kind === "run" ? s.argv.join(" ") : s.kind));
    expect(kinds[0]).toBe("systemctl disable --now ollama-watchdog.service");
    expect(kinds).toContain("remove-user");
    expect(kinds.indexOf("remove-user")).toBeGreaterThan(kinds.indexOf("systemctl daemon-reload"));
  });
});
