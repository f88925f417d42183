import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { nvidiaSmiArgv, parseNvidiaSmiCsv } from "../../../src/collectors/gpu-nvidia.js";
import { parseRocmSmiJson } from "../../../src/collectors/gpu-rocm.js";
import { FIXTURES } from "./support.js";

const fixture = (name: string) => readFileSync(join(FIXTURES, "gpu-parsers", name), "utf8");
const MiB = 1024 * 1024;

describe("parseNvidiaSmiCsv", () => {
  it("asks for exactly the fields it parses, without header or units", () => {
    expect(nvidiaSmiArgv("nvidia-smi")).toEqual([
      "nvidia-smi",
      "--query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw",
      "--format=csv,noheader,nounits",
    ]);
  });

  it("reads every GPU of a multi-GPU host: % → ratio, MiB → bytes", () => {
    expect(parseNvidiaSmiCsv(fixture("nvidia-2gpu.csv"))).toEqual([
      {
        index: "0",
        uuid: "GPU-3f6a2c1e-9b7d-4e21-a0c4-5d8e7f1b2a90",
        name: "NVIDIA GeForce RTX 4090",
        utilization: 0.37,
        memoryUsedBytes: 20468 * MiB,
        memoryTotalBytes: 24564 * MiB,
        temperatureCelsius: 61,
        powerWatts: 285.41,
      },
      {
        index: "1",
        uuid: "GPU-8c0e5d2b-14aa-4f3b-9e67-0b2d4c6a8f13",
        name: "NVIDIA GeForce RTX 4090",
        utilization: 0,
        memoryUsedBytes: 3 * MiB,
        memoryTotalBytes: 24564 * MiB,
        temperatureCelsius: 34,
        powerWatts: 21.07,
      },
    ]);
  });

  it("leaves utilization absent under MIG ([N/A]), never NaN or 0", () => {
    const gpus = parseNvidiaSmiCsv(fixture("nvidia-h100-mig.csv"));
    expect(gpus).toHaveLength(2);
    for (const gpu of gpus) {
      expect(gpu).not.toHaveProperty("utilization");
      expect(gpu.memoryTotalBytes).toBe(81559 * MiB);
    }
    expect(gpus[0]).toMatchObject({
      memoryUsedBytes: 11125 * MiB,
      temperatureCelsius: 53,
      powerWatts: 433.78,
    });
  });

  it("reads an old driver (465) the same way", () => {
    expect(parseNvidiaSmiCsv(fixture("nvidia-465-linux.csv"))).toEqual([
      {
        index: "0",
        uuid: "GPU-5e2c9a71-6d40-4b8e-a3f2-c91d7e08b4a6",
        name: "NVIDIA GeForce RTX 2080 SUPER",
        utilization: 0.03,
        memoryUsedBytes: 344 * MiB,
        memoryTotalBytes: 7979 * MiB,
        temperatureCelsius: 32,
        powerWatts: 30.37,
      },
    ]);
  });

  it("reads a Windows capture (466, CRLF, [Not Supported] power on a laptop GPU)", () => {
    const gpus = parseNvidiaSmiCsv(fixture("nvidia-466-windows.csv"));
    expect(gpus.map((gpu) => gpu.name)).toEqual([
      "NVIDIA GeForce RTX 2080 SUPER",
      "NVIDIA GeForce GTX 1650 with Max-Q Design",
    ]);
    expect(gpus[0]?.powerWatts).toBe(31.12);
    expect(gpus[1]).not.toHaveProperty("powerWatts");
    expect(gpus[1]).toMatchObject({ utilization: 0.12, temperatureCelsius: 48 });
  });

  it("omits every placeholder the tool prints: [Not Supported], deprecated, N/A, ERR!, empty", () => {
    const gpus = parseNvidiaSmiCsv(fixture("nvidia-placeholders.csv"));
    expect(gpus).toEqual([
      {
        index: "0",
        uuid: "GPU-11111111-2222-4333-8444-555555555555",
        name: "Tesla K80",
        memoryUsedBytes: 0,
        memoryTotalBytes: 11441 * MiB,
        temperatureCelsius: 31,
      },
      { index: "1", uuid: "", name: "NVIDIA A100-SXM4-40GB", memoryTotalBytes: 40960 * MiB },
      { index: "2", uuid: "GPU-99999999-8888-4777-8666-555555555555", name: "Quadro RTX 6000" },
    ]);
    for (const gpu of gpus) for (const value of Object.values(gpu)) expect(value).not.toBeNaN();
  });

  it("tolerates a header line and units left in", () => {
    expect(parseNvidiaSmiCsv(fixture("nvidia-with-units-header.csv"))).toEqual([
      {
        index: "0",
        uuid: "GPU-3f6a2c1e-9b7d-4e21-a0c4-5d8e7f1b2a90",
        name: "NVIDIA L40S",
        utilization: 0.09,
        memoryUsedBytes: 1235 * MiB,
        memoryTotalBytes: 46068 * MiB,
        temperatureCelsius: 54,
        powerWatts: 110.23,
      },
    ]);
  });

  it("keeps a comma inside the GPU name", () => {
    expect(parseNvidiaSmiCsv(fixture("nvidia-comma-in-name.csv"))[0]).toMatchObject({
      name: "NVIDIA RTX A4000, Laptop GPU",
      utilization: 0.15,
      powerWatts: 40,
    });
  });

  it("returns nothing for output that is not a GPU list", () => {
    expect(parseNvidiaSmiCsv("")).toEqual([]);
    expect(parseNvidiaSmiCsv("No devices were found\n")).toEqual([]);
    expect(
      parseNvidiaSmiCsv(
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n",
      ),
    ).toEqual([]);
  });
});

describe("parseRocmSmiJson (key drift across ROCm 4.3–6.x)", () => {
  it("ROCm 4.3: 'GPU ID', a bare vendor id as 'Card series' (falls back to the SKU), PCI bus as id", () => {
    expect(parseRocmSmiJson(fixture("rocm-4.3-rx6700xt.txt"))).toEqual([
      {
        index: "0",
        uuid: "0000:07:00.0",
        name: "67XA6S",
        utilization: 0.17,
        memoryUsedBytes: 5368709120,
        memoryTotalBytes: 12868124672,
        temperatureCelsius: 45,
        powerWatts: 96,
      },
    ]);
  });

  it("ROCm 5.7: six MI100s after a leading blank line, Unique ID where known", () => {
    const gpus = parseRocmSmiJson(fixture("rocm-5.7-mi100x6.txt"));
    expect(gpus.map((gpu) => gpu.index)).toEqual(["0", "1", "2", "3", "4", "5"]);
    expect(gpus[0]).toMatchObject({ uuid: "0x6a1f0c2e5b7d9e31", name: "Arcturus GL-XL [Instinct MI100]" });
    expect(gpus[3]?.uuid).toMatch(/^0000:/);
    expect(gpus[2]).toMatchObject({
      utilization: 1,
      memoryUsedBytes: 30064771072,
      memoryTotalBytes: 34342961152,
      powerWatts: 241,
      temperatureCelsius: expect.any(Number),
    });
  });

  it("ROCm 6.0: 'Device ID', power 'N/A (Secondary die)' is absent", () => {
    const [gpu] = parseRocmSmiJson(fixture("rocm-6.0-rx6700xt.txt"));
    expect(gpu).toMatchObject({ name: "Navi 22 [Radeon RX 6700/6700 XT / 6800M]", utilization: 0 });
    expect(gpu).not.toHaveProperty("powerWatts");
    expect(gpu?.memoryUsedBytes).toBe(1572757504);
  });

  it("ROCm 6.1: 'Device Name' and 'Card Series'", () => {
    expect(parseRocmSmiJson(fixture("rocm-6.1-rx6700xt.txt"))[0]).toMatchObject({
      name: "Navi 22 [Radeon RX 6700/6700 XT / 6800M]",
      utilization: 0.64,
      memoryTotalBytes: 12868124672,
      powerWatts: 6,
      temperatureCelsius: 45,
    });
  });

  it("Vega 10: no card series, no memory-use percentage", () => {
    expect(parseRocmSmiJson(fixture("rocm-vega10.txt"))).toEqual([
      {
        index: "0",
        uuid: "0x2150e7d042a1124",
        name: "D05101",
        utilization: 0,
        memoryUsedBytes: 17776640,
        memoryTotalBytes: 17163091968,
        temperatureCelsius: 39,
        powerWatts: 15,
      },
    ]);
  });

  it("newer parts: warnings before the JSON, socket power, junction temperature, cards sorted", () => {
    expect(parseRocmSmiJson(fixture("rocm-6.2-mi300x-warnings.txt"))).toEqual([
      {
        index: "0",
        uuid: "0x01f2e3d4c5b6a798",
        name: "AMD Instinct MI300X",
        utilization: 0.87,
        memoryUsedBytes: 154618822656,
        memoryTotalBytes: 205822885888,
        temperatureCelsius: 71,
        powerWatts: 612,
      },
      {
        index: "1",
        uuid: "0x11f2e3d4c5b6a798",
        name: "AMD Instinct MI300X",
        utilization: 0,
        memoryUsedBytes: 283115520,
        memoryTotalBytes: 205822885888,
        temperatureCelsius: 48,
        powerWatts: 139,
      },
    ]);
  });

  it("rejects output without a JSON object", () => {
    expect(() => parseRocmSmiJson("ERROR: No AMD GPUs specified\n")).toThrow(/no JSON/);
  });
});
