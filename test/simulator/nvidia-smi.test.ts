import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_GPU, readingAt } from "../../src/simulator/gpu-state.js";
import { formatQueryGpu, parseFormat } from "../../src/simulator/nvidia-smi-format.js";
import { ROOT } from "../support/paths.js";
import { waitFor } from "../support/wait.js";
import { loadModel, nvidiaSmi, startFast, stopAll } from "./support.js";

afterEach(stopAll);

const FIELDS = "index,uuid,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw";
const fixture = (name: string) => readFileSync(`${ROOT}test/fixtures/gpu/${name}`, "utf8");

/** A value's shape: digits become 9, a GPU UUID becomes GPU-UUID, a GPU name becomes NAME. */
function shape(line: string): string[] {
  return line.split(", ").map((value) =>
    value
      .replace(/^GPU-[0-9a-f-]{36}$/i, "GPU-UUID")
      .replace(/^NVIDIA .+$/, "NAME")
      .replace(/\d+/g, "9"),
  );
}

describe("the fake nvidia-smi", () => {
  it("formats --query-gpu like the real tool, with and without units and headers", async () => {
    const simulator = await startFast();
    await loadModel(simulator);
    const withUnits = await nvidiaSmi(simulator, [`--query-gpu=${FIELDS}`, "--format=csv"]);
    const [header, values] = withUnits.stdout.split("\n");
    const [realHeader, realValues] = fixture("query-gpu.csv").split("\n");
    expect(withUnits.exitCode).toBe(0);
    expect(header).toBe(realHeader);
    expect(shape(values as string)).toEqual(shape(realValues as string));

    const noUnits = await nvidiaSmi(simulator, [`--query-gpu=${FIELDS}`, "--format=csv,nounits"]);
    const [header2, values2] = noUnits.stdout.split("\n");
    const [realHeader2, realValues2] = fixture("query-gpu-nounits.csv").split("\n");
    expect(header2).toBe(realHeader2);
    expect(shape(values2 as string)).toEqual(shape(realValues2 as string));

    const noHeader = await nvidiaSmi(simulator, [`--query-gpu=${FIELDS}`, "--format=csv,noheader"]);
    expect(noHeader.stdout.split("\n").filter(Boolean)).toHaveLength(1);
  });

  it("prints [N/A] for utilization like a MIG card, and -L like the real list", async () => {
    const simulator = await startFast({ fault: { name: "gpu-tool-na" } });
    const mig = await nvidiaSmi(simulator, [`--query-gpu=${FIELDS}`, "--format=csv,noheader"]);
    expect(shape(mig.stdout.trim())).toEqual(shape(fixture("query-gpu-mig-noheader.csv").trim()));
    const list = await nvidiaSmi(simulator, ["-L"]);
    expect(
      list.stdout.replace(/\(UUID: GPU-[0-9a-f-]+\)/, "(UUID: X)").replace(/: NVIDIA [^(]+/, ": NAME "),
    ).toBe(
      fixture("list.txt")
        .replace(/\(UUID: GPU-[0-9a-f-]+\)/, "(UUID: X)")
        .replace(/: NVIDIA [^(]+/, ": NAME "),
    );
  });

  it("reports VRAM of loaded models, and ~0 % once nothing generates", async () => {
    // 0.12: the default num_ctx is 4096 whatever the VRAM (envconfig/config.go v0.12.5).
    const simulator = await startFast({ ollamaVersion: "0.12" });
    const idle = await nvidiaSmi(simulator, [
      "--query-gpu=utilization.gpu,memory.used",
      "--format=csv,noheader,nounits",
    ]);
    expect(idle.stdout).toBe("0, 0\n");
    await loadModel(simulator);
    await waitFor(async () => {
      const out = await nvidiaSmi(simulator, [
        "--query-gpu=utilization.gpu,memory.used",
        "--format=csv,noheader,nounits",
      ]);
      return out.stdout === "0, 1772\n";
    });
  });

  it("refuses unknown fields the way the real tool does", () => {
    const reading = readingAt({ mode: "ok", busyUntilWall: 0, memoryUsedBytes: 0, gpu: DEFAULT_GPU }, 0);
    const format = parseFormat("csv") as NonNullable<ReturnType<typeof parseFormat>>;
    expect(formatQueryGpu(["bogus"], format, DEFAULT_GPU, reading, 0, false)).toEqual({
      ok: false,
      stderr: 'Field "bogus" is not a valid field to query.\n\n',
      exitCode: 2,
    });
    expect(parseFormat("xml")).toBeUndefined();
  });
});
