import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    cli: "src/cli.ts",
    // Child processes of the simulator: a runner per loaded model, the fake nvidia-smi, journalctl
    // and systemctl.
    "simulator-runner": "src/simulator/runner-process.ts",
    "fake-nvidia-smi": "src/simulator/fake-nvidia-smi.ts",
    "fake-journalctl": "src/simulator/fake-journalctl.ts",
    "fake-systemctl": "src/simulator/fake-systemctl.ts",
    "bench/detection": "bench/detection.ts",
    "bench/overhead": "bench/overhead.ts",
    "bench/module-cost": "bench/module-cost.ts",
    "bench/proxy": "bench/proxy.ts",
    "bench/auth-flood": "bench/auth-flood.ts",
  },
  format: ["esm"],
  platform: "node",
  target: "node20",
  splitting: true,
  sourcemap: true,
  // Not `clean`: several test files spawn dist/ entries while another build may run.
  clean: false,
  banner: { js: "#!/usr/bin/env node" },
  // Bundled (tree-shaken) instead of loaded whole: valibot is one 412 KB module of which the
  // daemon uses a small part, and V8 keeps every loaded module's source (docs/performance.md).
  noExternal: ["valibot", "js-yaml"],
});
