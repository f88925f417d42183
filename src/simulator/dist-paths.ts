import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { writeFileAtomic } from "../core/fs.js";
import { type SocketTool, socketToolScript } from "./tool-server.js";

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

/** The system tools the simulator stands in for, each a built entry of its own. */
export type ToolEntry = "fake-nvidia-smi" | "fake-journalctl" | "fake-systemctl";

/** Built child-process entries (tsup): the runner and the system-tool stand-ins. */
export function distEntry(name: "simulator-runner" | ToolEntry): string {
  const path = join(packageRoot(), "dist", `${name}.js`);
  if (!existsSync(path)) throw new Error(`${path} is missing: build first (npx tsup)`);
  return path;
}

/**
 * An executable at `path` standing in for a system tool: a node script, not a shell script, so
 * the values it passes to the stand-in (through `env`) are JSON string literals, never shell words.
 */
export function writeToolWrapper(path: string, entry: ToolEntry, env: Record<string, string>): void {
  const script = [
    `#!${process.execPath}`,
    ...Object.entries(env).map(
      ([name, value]) => `process.env[${JSON.stringify(name)}] = ${JSON.stringify(value)};`,
    ),
    `import(${JSON.stringify(pathToFileURL(distEntry(entry)).href)}).catch((error) => {`,
    "  process.stderr.write(String(error) + '\\n');",
    "  process.exit(1);",
    "});",
    "",
  ].join("\n");
  writeFileAtomic(path, script, 0o755);
}

/**
 * The stand-in at `path` for a tool the simulator answers over its socket (./tool-server.ts): a
 * shell script, and beside it (`.<name>.js`) the Node stand-in it runs when the socket is silent.
 */
export function writeSocketToolWrapper(
  path: string,
  tool: SocketTool,
  entry: ToolEntry,
  env: Record<string, string>,
): void {
  writeToolWrapper(join(dirname(path), `.${basename(path)}.js`), entry, env);
  writeFileAtomic(path, socketToolScript(tool), 0o755);
}
