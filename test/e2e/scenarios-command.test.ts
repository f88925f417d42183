import { ALL_ROWS, describeRows, NEWEST } from "../support/rows.js";

/**
 * The restart rows and the budget (test/support/rows.ts `command: true`) through the command
 * restart path — no systemd, no journal — on the newest Ollama line.
 */
describeRows(ALL_ROWS, NEWEST, "command");
