import { Ollama } from "ollama";
import { afterEach, describe, expect, it } from "vitest";
import { MODEL, type Scenario, startScenario } from "../support/scenario.js";
import { waitFor } from "../support/wait.js";

let scenario: Scenario | undefined;

afterEach(async () => {
  await scenario?.stop();
  scenario = undefined;
});

interface ClientResult {
  client: number;
  ok: boolean;
  text: string;
  /** The stream had delivered at least one chunk when it failed (or finished). */
  started: boolean;
  error?: string;
}

async function streamingClient(url: string, client: number): Promise<ClientResult> {
  let text = "";
  let started = false;
  try {
    const stream = await new Ollama({ host: url }).generate({
      model: MODEL,
      prompt: `client ${client}`,
      stream: true,
      options: { num_predict: 3 },
    });
    for await (const part of stream) {
      started = true;
      text += part.response ?? "";
    }
    return { client, ok: true, text, started };
  } catch (error) {
    return { client, ok: false, text, started, error: (error as Error).message };
  }
}

describe("the stall guard protects clients while a freeze is healed", () => {
  it("20 clients across an F1 freeze and its heal: none that had not started streaming sees an error", async () => {
    scenario = await startScenario({
      target: { proxy: { listen: "127.0.0.1:0", holdFor: "20s" } },
      // Ollama's own 10 s for a runner's /health (needsReload's Ping, server/sched.go v0.12.5), not
      // 1/40 of it: at the heal the held and replayed requests reach Ollama at once and each pings
      // the new runner; on a starved CI machine one answer can take more than 250 ms, and Ollama
      // would then unload a healthy runner and load it again (docs/proxy.md, "Several clients").
      ollamaTiming: { healthPingTimeoutMs: 10_000 },
    });
    const s = scenario;
    await s.loadModelAndSettle();
    const url = s.watchdog.proxyUrl("sim") as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    s.simulator.setFault({ name: "runner-deadlock", model: MODEL });
    const clients: Promise<ClientResult>[] = [];
    // Five hang on the deadlocked runner before anything is detected ...
    for (let i = 0; i < 5; i++) clients.push(streamingClient(url, i));
    await s.waitForState("frozen");
    // ... five arrive while it is declared frozen, five while it is being healed ...
    for (let i = 5; i < 10; i++) clients.push(streamingClient(url, i));
    await waitFor(() => s.actions().length > 0 || s.states().at(-1) === "recovering", {
      timeoutMs: 15_000,
      what: "remediation under way",
    });
    for (let i = 10; i < 15; i++) clients.push(streamingClient(url, i));
    await s.waitForState("healthy", 40_000);
    // ... and five after the heal.
    for (let i = 15; i < 20; i++) clients.push(streamingClient(url, i));
    const results = await Promise.all(clients);

    const failures = results.filter((r) => !r.ok);
    expect(failures.filter((r) => !r.started)).toEqual([]);
    expect(results.every((r) => r.ok && r.text === "The sky is")).toBe(true);
    expect(s.actions().map((a) => `${a.action}:${a.result}`)).toEqual(["kill-runner:success"]);

    const metrics = await s.watchdog.telemetry.render();
    const value = (name: string) =>
      Number(new RegExp(`^${name}\\{target="sim",model="${MODEL}"\\} (\\d+)`, "m").exec(metrics)?.[1] ?? 0);
    // The five on the runner when it was killed were replayed — the one generating and the four
    // waiting for its slot, which fail too once the runner is gone (llm/server.go Completion:
    // "llama runner process no longer running", v0.12.5); later ones were held until healthy.
    expect(value("ollama_proxy_requests_replayed_total")).toBe(5);
    expect(value("ollama_proxy_requests_held_total")).toBeGreaterThanOrEqual(10);
    expect(metrics).toMatch(
      new RegExp(
        `^ollama_requests_total\\{target="sim",model="${MODEL}",endpoint="/api/generate",code="200"\\} 20$`,
        "m",
      ),
    );
    expect(value("ollama_tokens_generated_total")).toBe(60);
  });

  it("answers a prompt 503 with Retry-After in Ollama's format when the target is exhausted", async () => {
    scenario = await startScenario({
      target: { proxy: { listen: "127.0.0.1:0", holdFor: "20s" } },
      config: { remediation: { budget: { max: 0, window: "1h" }, cooldown: "1500ms", verifyWithin: "4s" } },
    });
    const s = scenario;
    await s.loadModelAndSettle();
    s.simulator.setFault({ name: "runner-deadlock", model: MODEL });
    await s.waitForState("exhausted", 20_000);
    const url = s.watchdog.proxyUrl("sim") as string;
    const started = performance.now();
    const response = await fetch(`${url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: MODEL, prompt: "hi" }),
    });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(response.status).toBe(503);
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await response.json()).error).toMatch(/stopped healing/);
    // Endpoints that need no runner still pass.
    expect((await fetch(`${url}/api/tags`)).status).toBe(200);
  });
});
