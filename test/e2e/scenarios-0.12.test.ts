import { ALL_ROWS, describeRows } from "../support/rows.js";

/** Every F and B row meant for every Ollama release line (test/support/rows.ts), on Ollama 0.12, default install. */
describeRows(ALL_ROWS, "0.12", "systemd");
