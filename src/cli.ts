import { setFlagsFromString } from "node:v8";
import { DAEMON_V8_FLAGS } from "./cli/v8-flags.js";

// Before anything else is imported: resolving the import graph below makes Node's own path code hot
// enough for TurboFan, and that one compilation alone brings ≈ 3 MB of the compiler's code pages
// into memory for the daemon's lifetime (docs/performance.md, "Fifth pass").
if (process.argv[2] === "run") setFlagsFromString(DAEMON_V8_FLAGS);

const { main } = await import("./cli/program.js");
await main(process.argv);
