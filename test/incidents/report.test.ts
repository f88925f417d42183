import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { renderMarkdown } from "../../src/incidents/report.js";
import { ROOT } from "../support/paths.js";
import { openRecorder, tempStateDir } from "./helpers.js";
import { SCENARIOS } from "./scenarios.js";

/**
 * Golden files: each scenario's report must match test/fixtures/incidents/<name>.md exactly.
 * After an intended change to the report, regenerate them on purpose and review the diff:
 *   UPDATE_GOLDEN=1 npx vitest run test/incidents/report.test.ts
 */
const GOLDEN_DIR = join(ROOT, "test/fixtures/incidents");
const update = process.env.UPDATE_GOLDEN === "1";

describe("recovery report goldens", () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  for (const build of SCENARIOS) {
    const { name, records } = build();
    it(`renders ${name}`, () => {
      const state = tempStateDir();
      cleanups.push(state.remove);
      const recorder = openRecorder(state.dir);
      for (const record of records) recorder.onTick(record);
      const [summary] = recorder.list();
      expect(recorder.list()).toHaveLength(1);
      const incident = recorder.get(summary?.id ?? "");
      expect(incident).toBeDefined();
      const markdown = renderMarkdown(incident as NonNullable<typeof incident>);
      const golden = join(GOLDEN_DIR, `${name}.md`);
      if (update) writeFileSync(golden, markdown);
      expect(existsSync(golden), `${golden} missing: UPDATE_GOLDEN=1 creates it`).toBe(true);
      expect(markdown).toBe(readFileSync(golden, "utf8"));
      for (const heading of [
        "Problem",
        "Symptoms",
        "Timeline",
        "Verification",
        "Final status",
        "What to check next",
      ]) {
        expect(markdown).toContain(`## ${heading}\n`);
      }
    });
  }
});
