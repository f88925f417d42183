import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SpawnFn } from "../../src/core/exec.js";
import { createNotifier, mergeMessages, notifyArgv } from "../../src/install/notify.js";
import { ROOT } from "../support/paths.js";

/** A real executable stands in for systemd-notify and logs each message it was given. */
const FAKE_NOTIFY = join(ROOT, "test/install/fixtures/systemd-notify");

let dir: string;
let log: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "owd-notify-"));
  log = join(dir, "messages");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const messages = () => {
  try {
    return readFileSync(log, "utf8").trim().split("\n").filter(Boolean);
  } catch {
    return [];
  }
};
const env = () => ({ NOTIFY_SOCKET: "/run/systemd/notify", NOTIFY_LOG: log, PATH: process.env.PATH ?? "" });

describe("notifyArgv / mergeMessages (pure)", () => {
  it("spells each field as systemd-notify expects, status on one line", () => {
    expect(notifyArgv({ ready: true, status: "listening on\nhttp://x" })).toEqual([
      "systemd-notify",
      "READY=1",
      "STATUS=listening on http://x",
    ]);
    expect(notifyArgv({ watchdog: true })).toEqual(["systemd-notify", "WATCHDOG=1"]);
    expect(notifyArgv({ stopping: true }, "/bin/sn")).toEqual(["/bin/sn", "STOPPING=1"]);
  });

  it("merging keeps every flag and the newest status", () => {
    expect(mergeMessages({ ready: true, status: "a" }, { watchdog: true, status: "b" })).toEqual({
      ready: true,
      watchdog: true,
      status: "b",
    });
  });
});

describe("createNotifier", () => {
  it("is a no-op without NOTIFY_SOCKET (not under systemd)", async () => {
    let spawned = 0;
    const spawn = (() => {
      spawned++;
      throw new Error("must not spawn");
    }) as unknown as SpawnFn;
    const notifier = createNotifier({}, spawn);
    notifier.ready("x");
    notifier.watchdog();
    notifier.status("y");
    notifier.stopping();
    await notifier.flush();
    expect(notifier.enabled).toBe(false);
    expect(spawned).toBe(0);
  });

  it("sends READY with its status, then one message per tick (watchdog + changed status)", async () => {
    const notifier = createNotifier(env(), undefined, { program: FAKE_NOTIFY });
    notifier.ready("listening on 127.0.0.1:11464");
    await notifier.flush();
    notifier.watchdog();
    notifier.status("default: healthy");
    await notifier.flush();
    notifier.watchdog();
    notifier.status("default: healthy"); // unchanged: not repeated
    await notifier.flush();
    notifier.stopping();
    await notifier.flush();
    expect(messages()).toEqual([
      "READY=1 STATUS=listening on 127.0.0.1:11464",
      "WATCHDOG=1 STATUS=default: healthy",
      "WATCHDOG=1",
      "STOPPING=1",
    ]);
  });

  it("never blocks the caller, and coalesces while a send is in flight", async () => {
    const notifier = createNotifier(env(), undefined, { program: FAKE_NOTIFY });
    const started = performance.now();
    for (let i = 0; i < 50; i++) notifier.watchdog();
    expect(performance.now() - started).toBeLessThan(20);
    await notifier.flush();
    expect(messages().length).toBeLessThanOrEqual(2);
    expect(messages()[0]).toBe("WATCHDOG=1");
  });

  it("a missing or hanging systemd-notify never throws and gives up at its deadline", async () => {
    const missing = createNotifier(env(), undefined, { program: join(dir, "no-such-program") });
    missing.ready("x");
    await missing.flush();

    const results: Array<{ timedOut: boolean }> = [];
    const hanging = createNotifier(env(), undefined, {
      program: "/bin/sleep",
      timeoutMs: 200,
      onSent: (r) => results.push(r),
    });
    // "/bin/sleep WATCHDOG=1" fails at once (bad argument); a real hang is covered by execArgv.
    hanging.watchdog();
    await hanging.flush();
    expect(results).toHaveLength(1);
  });
});
