import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The built CLI (`npm run build` / `npx tsup` first): tests run the real product. */
export const CLI = `${ROOT}dist/cli.js`;
/** argv prefix that runs the built CLI. */
export const CLI_ARGV = [process.execPath, CLI];
