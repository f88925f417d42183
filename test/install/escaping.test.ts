import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { renderPolkitRule, renderSysusers } from "../../src/install/files.js";
import { defaultLayout } from "../../src/install/layout.js";
import { renderUnit, type UnitInputs } from "../../src/install/unit.js";

/**
 * Issue #11 M8: nothing that comes from the config or the command line is rendered into a
 * root-owned file as live code. The config refuses such names (test/unit/config), and the
 * renderers refuse or escape them again (defense in depth: they also take installer options).
 */
const HOSTILE_UNIT = "x.service\npolkit.addRule(function () { return polkit.Result.YES; });\n//";

/** Runs a polkit rules file the way polkitd does (ES5, a global `polkit`) and asks one question. */
function ask(
  rule: string,
  question: { user: string; unit: string; verb: string },
): { rules: number; answer: unknown } {
  const rules: Array<(action: unknown, subject: unknown) => unknown> = [];
  runInNewContext(rule, {
    polkit: { addRule: (fn: (typeof rules)[number]) => rules.push(fn), Result: { YES: "yes" } },
  });
  const action = {
    id: "org.freedesktop.systemd1.manage-units",
    lookup: (key: string) => (key === "unit" ? question.unit : question.verb),
  };
  const answers = rules.map((fn) => fn(action, { user: question.user }));
  return { rules: rules.length, answer: answers.find((a) => a !== undefined) };
}

describe("polkit rule", () => {
  it("allows exactly restart of the listed unit by the service user", () => {
    const rule = renderPolkitRule("ollama-watchdog", ["ollama.service"]);
    expect(ask(rule, { user: "ollama-watchdog", unit: "ollama.service", verb: "restart" })).toEqual({
      rules: 1,
      answer: "yes",
    });
    expect(ask(rule, { user: "mallory", unit: "ollama.service", verb: "restart" }).answer).toBeUndefined();
    expect(
      ask(rule, { user: "ollama-watchdog", unit: "sshd.service", verb: "restart" }).answer,
    ).toBeUndefined();
    expect(
      ask(rule, { user: "ollama-watchdog", unit: "ollama.service", verb: "stop" }).answer,
    ).toBeUndefined();
  });

  it("refuses a unit or user name that is not systemd's grammar instead of rendering it", () => {
    expect(() => renderPolkitRule("ollama-watchdog", [HOSTILE_UNIT])).toThrow(/not a valid unit name/);
    expect(() => renderPolkitRule('x", "root', ["ollama.service"])).toThrow(/not a valid user name/);
  });
});

describe("unit and sysusers files", () => {
  const inputs = (stateDir: string): UnitInputs => ({
    layout: defaultLayout(),
    stateDir,
    extraWritablePaths: [],
    watchdogSec: 45,
    supplementaryGroups: [],
    privateDevices: false,
    after: ["ollama.service"],
  });

  it("quote paths with spaces and escape systemd's % specifiers", () => {
    const unit = renderUnit(inputs("/srv/ollama watchdog/%h"));
    expect(unit).toContain('ReadWritePaths="/srv/ollama watchdog/%%h"');
    expect(renderSysusers("ollama-watchdog", "/srv/a b")).toContain('"/srv/a b"');
  });

  it("refuse a newline (it would start a new directive) and refuse hostile unit names", () => {
    expect(() => renderUnit(inputs("/srv/x\nExecStartPre=/bin/sh -c id"))).toThrow(/control character/);
    expect(() => renderUnit({ ...inputs("/srv/x"), after: [HOSTILE_UNIT] })).toThrow(/not a valid unit name/);
    expect(() => renderSysusers("ollama-watchdog", "/srv/x\nu root")).toThrow(/control character/);
  });
});
