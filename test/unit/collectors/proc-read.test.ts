import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readProcFile } from "../../../src/collectors/proc-read.js";
import { scratchDir } from "./support.js";

describe("readProcFile", () => {
  let dir = "";
  let cleanup = () => {};
  beforeEach(() => {
    ({ dir, cleanup } = scratchDir("proc-read"));
  });
  afterEach(() => cleanup());

  it("reads a real procfs file, which reports size 0", async () => {
    const text = await readProcFile(`/proc/${process.pid}/stat`);
    expect(text.startsWith(`${process.pid} (`)).toBe(true);
    expect(text.endsWith("\n")).toBe(true);
  });

  it("reads a file longer than one read, a character split across two reads intact", async () => {
    // "é" is two bytes in UTF-8; at offset 4095 it straddles the first 4 KiB read.
    const text = `${"a".repeat(4095)}é${"b".repeat(10_000)}\n`;
    writeFileSync(join(dir, "long"), text);
    expect(await readProcFile(join(dir, "long"))).toBe(text);
  });

  it("reads an empty file as empty, and many files at once each whole", async () => {
    writeFileSync(join(dir, "empty"), "");
    expect(await readProcFile(join(dir, "empty"))).toBe("");
    const names = Array.from({ length: 50 }, (_, i) => `f${i}`);
    for (const name of names) writeFileSync(join(dir, name), `${name} `.repeat(200 + Number(name.slice(1))));
    const texts = await Promise.all(names.map((name) => readProcFile(join(dir, name))));
    expect(texts.map((t, i) => t === `f${i} `.repeat(200 + i))).toEqual(names.map(() => true));
  });

  it("fails with the error's code for a missing file, and within its deadline for a FIFO without a writer", async () => {
    await expect(readProcFile(join(dir, "missing"))).rejects.toMatchObject({ code: "ENOENT" });
    execFileSync("mkfifo", [join(dir, "fifo")]);
    // Opened O_NONBLOCK: a FIFO with no writer reads as empty at once instead of blocking a pool thread.
    expect(await readProcFile(join(dir, "fifo"), 500)).toBe("");
  });
});
