import { BENIGN_ROWS, describeRows, NEWEST } from "../support/rows.js";

/**
 * FAILURE-MODES.md benign rows B1–B5 (test/support/rows.ts) on the newest Ollama line through the
 * default install (systemd + journal): ZERO actions over a window several times longer than
 * freezeAfter. A false restart kills users' work.
 */
describeRows(BENIGN_ROWS, NEWEST, "systemd");
