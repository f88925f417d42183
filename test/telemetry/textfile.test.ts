import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Telemetry } from "../../src/telemetry/metrics.js";
import { writeTextfile } from "../../src/telemetry/textfile.js";
import { type NodeExporter, promtool, startNodeExporter } from "../support/prometheus.js";
import { snapshot, target } from "./fixtures.js";

describe("textfile output with a real node_exporter", () => {
  let dir: string;
  let exporter: NodeExporter;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "ow-textfile-"));
    exporter = await startNodeExporter({ textfileDir: dir });
  });

  afterAll(async () => {
    await exporter?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes the same families, without timestamps, and node_exporter reads them", async () => {
    let s = snapshot({ targets: [target("default", "frozen", { frozenForMs: 90_000 })] });
    const telemetry = new Telemetry({ getSnapshot: () => s });
    telemetry.observeCanary("default", {
      model: "m",
      outcome: "ok",
      startedMono: 0,
      ttftMs: 250,
      durationMs: 300,
    });
    telemetry.countAction("default", {
      action: "kill-runner",
      result: "success",
      startedWall: 0,
      durationMs: 3,
    });
    const path = join(dir, "ollama.prom");
    await writeTextfile(path, telemetry);

    const written = readFileSync(path, "utf8");
    expect(written).toBe(await telemetry.render());
    // no sample line carries a timestamp: `name{labels} value` only
    for (const line of written.split("\n").filter((l) => l && !l.startsWith("#"))) {
      expect(line).toMatch(/^[a-z_:]+(\{[^}]*\})? \S+$/);
    }
    // only the final file is left behind: the temp file was renamed
    expect(readdirSync(dir)).toEqual(["ollama.prom"]);

    const scraped = await exporter.scrape();
    expect(scraped).toContain('ollama_watchdog_state{state="frozen",target="default"} 1');
    expect(scraped).toContain('ollama_frozen_duration_seconds{target="default"} 90');
    expect(scraped).toContain(
      'ollama_watchdog_actions_total{action="kill-runner",result="success",target="default"} 1',
    );
    expect(scraped).toContain('ollama_canary_duration_seconds_bucket{target="default",le="0.25"} 1');
    expect(scraped).toMatch(/^ollama_gpu_memory_used_bytes\{.*\} \S+$/m);
    expect(scraped).toMatch(/^ollama_watchdog_build_info\{version="[^"]+"\} 1$/m);
    expect(scraped).toMatch(/^node_textfile_scrape_error 0$/m);
    expect(scraped).toMatch(/^node_scrape_collector_success\{collector="textfile"\} 1$/m);

    // what node_exporter serves lints clean too
    const lint = await promtool(["check", "metrics"], await telemetry.render());
    expect(lint.stdout + lint.stderr).toBe("");

    // rewritten while node_exporter scrapes: never a torn or half-written file
    const scrapes: Promise<string>[] = [];
    for (let i = 0; i < 40; i++) {
      s = snapshot({ targets: [target("default", i % 2 ? "healthy" : "frozen", { frozenForMs: i * 1000 })] });
      await writeTextfile(path, telemetry);
      scrapes.push(exporter.scrape());
    }
    for (const text of await Promise.all(scrapes)) {
      expect(text).toMatch(/^node_textfile_scrape_error 0$/m);
      expect(text).toContain('ollama_watchdog_build_info{version="');
    }
    expect(readdirSync(dir)).toEqual(["ollama.prom"]);
  });
});
