/**
 * The faults issue #10 added: a real scheduler freeze (both forms), the empty-answer server
 * (#18213) and degenerate endless output (#12512).
 */
import { Ollama } from "ollama";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../support/wait.js";
import {
  EMBED_MODEL,
  generateOnce,
  gpuReading,
  loadModel,
  MODEL,
  OTHER_MODEL,
  ps,
  startFast,
  stopAll,
  stopWatching,
  watchRequest,
} from "./support.js";

afterEach(stopAll);

const NO_BYTE_WAIT_MS = 600;
const generateUrl = (url: string) => `${url}/api/generate`;

describe("scheduler-freeze", () => {
  it.each([
    ["0.30", false],
    ["0.33", true],
  ])(
    "on %s: generations for every model hang, /api/tags and /api/embed answer; /api/ps hangs: %s",
    async (id, psHangs) => {
      const simulator = await startFast({ ollamaVersion: id });
      const ollama = new Ollama({ host: simulator.url });
      await loadModel(simulator);
      await ollama.embed({ model: EMBED_MODEL, input: "warm" });
      simulator.setFault({ name: "scheduler-freeze" });
      const [loaded, other] = await Promise.all([
        watchRequest(generateUrl(simulator.url), { model: MODEL, prompt: "hi" }, NO_BYTE_WAIT_MS),
        watchRequest(generateUrl(simulator.url), { model: OTHER_MODEL, prompt: "hi" }, NO_BYTE_WAIT_MS),
      ]);
      expect([loaded.status, other.status]).toEqual([undefined, undefined]);
      expect((await ollama.list()).models.length).toBe(3);
      expect((await ollama.embed({ model: EMBED_MODEL, input: "still" })).embeddings).toHaveLength(1);
      const listed = await watchRequest(`${simulator.url}/api/ps`, undefined, NO_BYTE_WAIT_MS, "GET");
      expect(listed.status).toBe(psHangs ? undefined : 200);
      await simulator.restart();
      expect((await generateOnce(simulator)).status).toBe(200);
    },
  );

  it("form=loads: loaded models keep answering, a load hangs", async () => {
    const simulator = await startFast({ ollamaVersion: "0.20" });
    await loadModel(simulator);
    simulator.setFault({ name: "scheduler-freeze", form: "loads" });
    expect((await generateOnce(simulator)).status).toBe(200);
    const loading = await watchRequest(
      generateUrl(simulator.url),
      { model: OTHER_MODEL, prompt: "hi" },
      NO_BYTE_WAIT_MS,
    );
    expect(loading.status).toBeUndefined();
    expect((await ps(simulator)).models.map((m) => m.name)).toEqual([MODEL]);
    expect(() => simulator.setFault({ name: "scheduler-freeze", form: "sideways" })).toThrow(/form must be/);
  });
});

describe("silent wrong answers", () => {
  it("empty-answer: HTTP 200, done, no token, eval_count 0 (#18213)", async () => {
    const simulator = await startFast();
    const ollama = new Ollama({ host: simulator.url });
    simulator.setFault({ name: "empty-answer" });
    const answer = await ollama.generate({ model: MODEL, prompt: "Why is the sky blue?" });
    expect(answer).toMatchObject({ done: true, response: "", eval_count: 0, done_reason: "stop" });
    const chat = await ollama.chat({ model: MODEL, messages: [{ role: "user", content: "hi" }] });
    expect(chat).toMatchObject({ done: true, eval_count: 0 });
    expect(chat.message.content).toBe("");
  });

  it("degenerate-output: the same token forever at full GPU, never done (#12512)", async () => {
    const simulator = await startFast({ timing: { gpuBusyWindowMs: 300 } });
    await loadModel(simulator);
    simulator.setFault({ name: "degenerate-output" });
    const endless = await watchRequest(generateUrl(simulator.url), { model: MODEL, prompt: "hi" }, 4000);
    expect(endless.status).toBe(200);
    expect(endless.ended).toBe(false);
    const chunks = endless.body
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { response: string; done: boolean });
    // More than the 31 chunks Ollama's repeat guard lets through: varying chunk lengths evade it.
    expect(chunks.length).toBeGreaterThan(31);
    expect(chunks.every((chunk) => /^G+$/.test(chunk.response) && !chunk.done)).toBe(true);
    const busy = watchRequest(generateUrl(simulator.url), { model: MODEL, prompt: "hi" }, 20_000);
    await waitFor(async () => (await gpuReading(simulator)).util > 50, { what: "GPU busy" });
    await stopWatching(busy);
  });

  it("degenerate-output chunks=same: Ollama's repeat guard ends the stream after 31 chunks, with no final message", async () => {
    const simulator = await startFast();
    simulator.setFault({ name: "degenerate-output", chunks: "same" });
    const cut = await watchRequest(generateUrl(simulator.url), { model: MODEL, prompt: "hi" }, 5000);
    expect(cut).toMatchObject({ status: 200, ended: true });
    const chunks = cut.body
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { response: string; done: boolean });
    expect(chunks).toHaveLength(31);
    expect(chunks.some((chunk) => chunk.done)).toBe(false);
  });
});
