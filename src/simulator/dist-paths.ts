import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root, found upward from this module (works from src/ under vitest and from dist/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, "utf8")) as { name?: string };
      if (pkg.name === "ollama-watchdog") return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("ollama-watchdog package root not found");
    dir = parent;
  }
}

/** Built child-process entries (tsup): the runner, the fake nvidia-smi and the journalctl stand-in. */
export function distEntry(name: "simulator-runner" | "fake-nvidia-smi" | "fake-journalctl"): string {
  const path = join(packageRoot(), "dist", `${name}.js`);
  if (!existsSync(path)) throw new Error(`${path} is missing: build first (npx tsup)`);
  return path;
}
