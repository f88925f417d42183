import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { gpuCollector } from "../../../src/collectors/gpu.js";
import { observeHost } from "../../../src/collectors/observe.js";
import { FIXTURES, scratchDir, testContext, writeExecutable } from "./support.js";

const QUERY =
  "--query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw";

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = scratchDir("gpu"));
});
afterEach(() => cleanup());

/** A fake nvidia-smi that prints a capture, but only when asked the right question. */
function fakeNvidiaSmi(capture: string): string {
  return writeExecutable(
    dir,
    "nvidia-smi",
    `[ "$1" = "${QUERY}" ] && [ "$2" = "--format=csv,noheader,nounits" ] || { echo "bad args: $*" >&2; exit 2; }
cat '${join(FIXTURES, "gpu-parsers", capture)}'`,
  );
}
const fakeRocmSmi = (capture: string) =>
  writeExecutable(dir, "rocm-smi", `cat '${join(FIXTURES, "gpu-parsers", capture)}'`);
const hanging = (name: string) => writeExecutable(dir, name, "exec sleep 600");
const missing = (name: string) => join(dir, `no-such-${name}`);

/** Tools that answer get a generous deadline (a loaded CI machine); hangs a short one. */
function gpuContext(gpu: Record<string, unknown>, timeout = "10s") {
  return testContext({ config: { gpu: { timeout, ...gpu } } });
}

describe("gpu collector", () => {
  it("nvidia: runs the tool with the query and parses its output", async () => {
    const ctx = gpuContext({ backend: "nvidia", nvidiaSmi: fakeNvidiaSmi("nvidia-2gpu.csv") });
    const output = await gpuCollector.collect(ctx);
    expect(output.applies).toBe(true);
    expect(output.applies && output.value.map((gpu) => gpu.index)).toEqual(["0", "1"]);
  });

  it("a missing binary does not apply; it is not an error", async () => {
    const ctx = gpuContext({ backend: "nvidia", nvidiaSmi: missing("nvidia-smi") });
    expect(await gpuCollector.collect(ctx)).toEqual({
      applies: false,
      reason: expect.stringContaining("not found"),
    });
  });

  it("a hanging tool is an error at its deadline, in about that time", async () => {
    const ctx = gpuContext({ backend: "nvidia", nvidiaSmi: hanging("nvidia-smi") }, "300ms");
    const started = performance.now();
    await expect(gpuCollector.collect(ctx)).rejects.toThrow("nvidia-smi did not finish within 300ms");
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1900);
  });

  it("a failing tool is an error that says what the tool said", async () => {
    const nvidiaSmi = writeExecutable(
      dir,
      "nvidia-smi",
      `echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." ; exit 9`,
    );
    await expect(gpuCollector.collect(gpuContext({ backend: "nvidia", nvidiaSmi }))).rejects.toThrow(
      /exited with 9: NVIDIA-SMI has failed/,
    );
  });

  it("'No devices were found' does not apply", async () => {
    const nvidiaSmi = writeExecutable(dir, "nvidia-smi", `echo "No devices were found"; exit 6`);
    expect((await gpuCollector.collect(gpuContext({ backend: "nvidia", nvidiaSmi }))).applies).toBe(false);
  });

  it("rocm: parses rocm-smi JSON", async () => {
    const ctx = gpuContext({ backend: "rocm", rocmSmi: fakeRocmSmi("rocm-6.1-rx6700xt.txt") });
    const output = await gpuCollector.collect(ctx);
    expect(output.applies && output.value[0]?.name).toBe("Navi 22 [Radeon RX 6700/6700 XT / 6800M]");
  });

  it("auto: nvidia missing → rocm", async () => {
    const ctx = gpuContext({ nvidiaSmi: missing("nvidia-smi"), rocmSmi: fakeRocmSmi("rocm-vega10.txt") });
    const output = await gpuCollector.collect(ctx);
    expect(output.applies && output.value[0]?.name).toBe("D05101");
  });

  it("auto: both missing → does not apply", async () => {
    const ctx = gpuContext({ nvidiaSmi: missing("nvidia-smi"), rocmSmi: missing("rocm-smi") });
    expect(await gpuCollector.collect(ctx)).toEqual({
      applies: false,
      reason: expect.stringContaining("no GPU tool"),
    });
  });

  it("auto: a leftover nvidia-smi that fails fast falls through to rocm-smi", async () => {
    const nvidiaSmi = writeExecutable(
      dir,
      "nvidia-smi",
      "echo 'Failed to initialize NVML: Driver/library version mismatch'; exit 18",
    );
    const ctx = gpuContext({ nvidiaSmi, rocmSmi: fakeRocmSmi("rocm-5.7-mi100x6.txt") });
    const output = await gpuCollector.collect(ctx);
    expect(output.applies && output.value).toHaveLength(6);
  });

  it("auto: a hanging nvidia-smi spends the deadline and does not start rocm-smi", async () => {
    const marker = join(dir, "rocm-started");
    const rocmSmi = writeExecutable(dir, "rocm-smi", `touch '${marker}'; exit 1`);
    const ctx = gpuContext({ nvidiaSmi: hanging("nvidia-smi"), rocmSmi }, "300ms");
    await expect(gpuCollector.collect(ctx)).rejects.toThrow(/did not finish within 300ms/);
    expect(existsSync(marker)).toBe(false);
  });

  it("backend none does not apply and runs nothing", async () => {
    const ctx = gpuContext({ backend: "none", nvidiaSmi: hanging("nvidia-smi") }, "300ms");
    expect((await gpuCollector.collect(ctx)).applies).toBe(false);
  });
});

describe("observeHost", () => {
  it("returns the GPUs and a success status", async () => {
    const host = await observeHost(
      gpuContext({ backend: "nvidia", nvidiaSmi: fakeNvidiaSmi("nvidia-h100-mig.csv") }),
    );
    expect(host.gpus).toHaveLength(2);
    expect(host.status).toMatchObject({ collector: "gpu", applies: true, success: true });
  });

  it("a hanging tool yields a failed status, never blocks", async () => {
    const host = await observeHost(
      gpuContext({ backend: "nvidia", nvidiaSmi: hanging("nvidia-smi") }, "300ms"),
    );
    expect(host.gpus).toBeUndefined();
    expect(host.status).toMatchObject({
      collector: "gpu",
      success: false,
      error: expect.stringContaining("300ms"),
    });
    expect(host.status.durationMs).toBeLessThan(1900);
  });

  it("no GPU tool: applies false, no gpus", async () => {
    const host = await observeHost(
      gpuContext({ nvidiaSmi: missing("nvidia-smi"), rocmSmi: missing("rocm-smi") }),
    );
    expect(host).toEqual({
      status: expect.objectContaining({ collector: "gpu", applies: false, success: true }),
    });
  });
});
