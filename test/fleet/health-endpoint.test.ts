import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { silentLogger } from "../../src/core/log.js";
import { Watchdog } from "../../src/daemon/watchdog.js";
import { type Simulator, startSimulator } from "../../src/simulator/index.js";
import { waitFor } from "../support/wait.js";

/**
 * The load balancer's check during the start-up grace: the watchdog does not judge a target yet,
 * but one whose Ollama does not answer (dead since before a reboot, or still booting) is kept out
 * of rotation; one that answers is in.
 */
describe("/targets/<name>/health while starting", () => {
  let dir: string;
  let simulator: Simulator;
  let watchdog: Watchdog;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "owd-health-"));
    simulator = await startSimulator({ stateDir: join(dir, "sim") });
    const restart = { command: { argv: ["/bin/true"] } };
    watchdog = await Watchdog.start({
      config: parseConfig(
        {
          interval: "100ms",
          listen: "127.0.0.1:0",
          stateDir: join(dir, "state"),
          targets: [
            { name: "dead", url: "http://127.0.0.1:9", restart },
            { name: "alive", url: simulator.url, restart },
          ],
          detection: { startupGrace: "1h" },
          remediation: { dryRun: true },
          gpu: { backend: "none" },
        },
        {},
      ),
      log: silentLogger(),
    });
  });

  afterAll(async () => {
    await watchdog?.stop();
    await simulator?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const health = async (name: string) => {
    const response = await fetch(`${watchdog.url}/targets/${name}/health`);
    return { status: response.status, state: ((await response.json()) as { state: string }).state };
  };

  it("answers 503 for a target whose Ollama does not answer, 200 for one that does", async () => {
    const ticks = watchdog.snapshot().ticks;
    await waitFor(() => watchdog.snapshot().ticks >= ticks + 3, { what: "three ticks" });
    expect(await health("dead")).toEqual({ status: 503, state: "starting" });
    expect(await health("alive")).toEqual({ status: 200, state: "starting" });
  });
});
