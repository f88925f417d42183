import { Ollama } from "ollama";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../support/wait.js";
import {
  EMBED_MODEL,
  generateOnce,
  MODEL,
  OTHER_MODEL,
  ps,
  startFast,
  stopAll,
  watchRequest,
} from "./support.js";

afterEach(stopAll);

describe("the official ollama client against the simulator", () => {
  it("lists, shows, generates and chats, streaming and not, then unloads", async () => {
    const simulator = await startFast();
    const ollama = new Ollama({ host: simulator.url });

    const list = await ollama.list();
    expect(list.models.map((m) => m.name)).toEqual([MODEL, OTHER_MODEL, EMBED_MODEL]);
    expect(list.models[0]?.details.parameter_size).toBe("1.2B");

    const show = await ollama.show({ model: MODEL });
    expect(show.details.family).toBe("llama");
    expect((show.model_info as unknown as Record<string, unknown>)["llama.context_length"]).toBe(131_072);

    expect((await ollama.ps()).models).toEqual([]);

    const answer = await ollama.generate({ model: MODEL, prompt: "Why is the sky blue?" });
    expect(answer.done).toBe(true);
    expect(answer.done_reason).toBe("stop");
    expect(answer.response).toMatch(/^The sky is blue/);
    for (const field of [
      "total_duration",
      "load_duration",
      "prompt_eval_count",
      "prompt_eval_duration",
      "eval_count",
      "eval_duration",
    ] as const) {
      expect(answer[field]).toBeGreaterThan(0);
    }

    const parts: string[] = [];
    let last: { done: boolean; done_reason?: string; eval_count?: number } | undefined;
    for await (const part of await ollama.generate({
      model: MODEL,
      prompt: "hi",
      stream: true,
      options: { num_predict: 3 },
    })) {
      parts.push(part.response ?? "");
      last = part;
    }
    expect(last).toMatchObject({ done: true, done_reason: "length", eval_count: 3 });
    expect(parts.join("")).toBe("The sky is");

    const chat = await ollama.chat({ model: MODEL, messages: [{ role: "user", content: "hi" }] });
    expect(chat.message.role).toBe("assistant");
    expect(chat.message.content.length).toBeGreaterThan(0);
    let chatText = "";
    for await (const part of await ollama.chat({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    })) {
      chatText += part.message.content;
    }
    expect(chatText).toBe(chat.message.content);

    const running = await ollama.ps();
    expect(running.models).toHaveLength(1);
    const entry = running.models[0];
    // The default profile picks num_ctx by VRAM (server/routes.go v0.20.7+): 24 GiB → 32768.
    expect(entry).toMatchObject({ name: MODEL, model: MODEL, context_length: 32_768 });
    expect(entry?.size_vram).toBe(entry?.size);
    const expiresIn = new Date(entry?.expires_at as Date).getTime() - Date.now();
    expect(expiresIn).toBeGreaterThan(4 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(5 * 60_000);

    const unload = await ollama.generate({ model: MODEL, prompt: "", keep_alive: 0 });
    expect(unload.done_reason).toBe("unload");
    await waitFor(async () => (await ollama.ps()).models.length === 0, { what: "model unloaded" });
    expect(simulator.runners()).toEqual([]);
  });

  it("answers /, HEAD /, /api/version and Ollama's error shapes", async () => {
    const simulator = await startFast();
    const root = await fetch(simulator.url);
    expect(await root.text()).toBe("Ollama is running");
    expect((await fetch(simulator.url, { method: "HEAD" })).status).toBe(200);
    expect(await (await fetch(`${simulator.url}/api/version`)).json()).toEqual({
      version: expect.stringMatching(/^\d+\.\d+\.\d+$/),
    });
    const missing = await generateOnce(simulator, { model: "nope:1b" });
    expect(missing).toEqual({ status: 404, body: { error: "model 'nope:1b' not found" } });
    await expect(new Ollama({ host: simulator.url }).show({ model: "nope" })).rejects.toMatchObject({
      status_code: 404,
    });
  });

  it("streams /v1/chat/completions as server-sent events", async () => {
    const simulator = await startFast();
    const response = await fetch(`${simulator.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({
        model: MODEL,
        stream: true,
        max_tokens: 4,
        messages: [{ role: "user", content: "hi" }],
      }),
    });
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const events = (await response.text()).split("\n\n").filter(Boolean);
    expect(events.at(-1)).toBe("data: [DONE]");
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.replace(/^data: /, "")));
    expect(chunks.map((c) => c.choices[0].delta.content).join("")).toBe("The sky is blue");
    expect(chunks.at(-1).choices[0].finish_reason).toBe("length");
    expect(chunks[0]).toMatchObject({ object: "chat.completion.chunk", model: MODEL });
  });

  it("keep_alive: seconds and durations set expiry when a request finishes; negative is forever", async () => {
    const simulator = await startFast();
    await generateOnce(simulator, { keep_alive: 90, options: { num_predict: 1 } });
    const inSeconds = new Date((await ps(simulator)).models[0]?.expires_at as string).getTime() - Date.now();
    expect(inSeconds).toBeGreaterThan(80_000);
    expect(inSeconds).toBeLessThanOrEqual(90_000);
    await generateOnce(simulator, { keep_alive: "-1m", options: { num_predict: 1 } });
    const forever = new Date((await ps(simulator)).models[0]?.expires_at as string).getFullYear();
    expect(forever).toBeGreaterThan(2200);
    await generateOnce(simulator, { keep_alive: "1ms", options: { num_predict: 1 } });
    await waitFor(async () => (await ps(simulator)).models.length === 0, { what: "expiry unloads" });
  });

  it("a different num_ctx reloads the runner; a loading model is listed with expires_at = now + keep-alive", async () => {
    const simulator = await startFast({ timing: { loadMs: 800 } });
    const loading = watchRequest(
      `${simulator.url}/api/generate`,
      { model: MODEL, prompt: "hi", keep_alive: "10m" },
      5000,
    );
    const listed = await waitFor(async () => (await ps(simulator)).models[0]);
    const expiresIn = new Date(listed.expires_at as string).getTime() - Date.now();
    expect(expiresIn).toBeGreaterThan(9 * 60_000);
    expect((await loading).status).toBe(200);
    const firstPid = simulator.runners()[0]?.pid;
    const reloaded = await generateOnce(simulator, { options: { num_ctx: 8192, num_predict: 1 } });
    expect(reloaded.status).toBe(200);
    expect((await ps(simulator)).models[0]?.context_length).toBe(8192);
    expect(simulator.runners()[0]?.pid).not.toBe(firstPid);
  });
});
