import type { Reporter, TestCase, TestModule, TestSuite } from "vitest/node";

/**
 * Prints the plain closing line CI reads: "N passed, N failed[, N skipped]".
 *
 * A test that never ran because the suite around it failed (a `beforeAll` that threw) counts as
 * failed, not skipped: "skipped" is only what a test or its author asked for (`it.skip`,
 * `it.todo`, `ctx.skip()`, a filter). A suite or module that failed with no test to blame (it
 * failed to load, or its `afterAll` threw after its tests ran) counts as one failure. Proved by
 * test/unit/support/summary-reporter.test.ts.
 */
export default class SummaryReporter implements Reporter {
  /** Tests that started (vitest calls onTestCaseReady only for those). */
  private readonly started = new Set<string>();

  onTestCaseReady(test: TestCase): void {
    this.started.add(test.id);
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed" || this.preventedBySuite(test)) failed++;
        else skipped++;
      }
      for (const holder of [module, ...module.children.allSuites()]) {
        const failedOnItsOwn =
          holder.errors().length > 0 ||
          (holder === module && module.state() === "failed" && module.children.size === 0);
        const blamed = [...holder.children.allTests()].some((test) => this.preventedBySuite(test));
        if (failedOnItsOwn && !blamed) failed++;
      }
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
  }

  /** Meant to run, never started, and a suite or the module around it failed on its own. */
  private preventedBySuite(test: TestCase): boolean {
    if (test.options.mode !== "run" || this.started.has(test.id)) return false;
    for (let parent: TestSuite | TestModule = test.parent; ; parent = parent.parent) {
      if (parent.errors().length > 0) return true;
      if (parent.type === "module") return false;
    }
  }
}
