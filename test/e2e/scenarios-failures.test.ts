import { describeRows, FAILURE_ROWS, NEWEST } from "../support/rows.js";

/**
 * FAILURE-MODES.md rows F1–F9 (test/support/rows.ts) on the newest Ollama line through the default
 * install (systemd + journal): each gets the right action within its bound.
 */
describeRows(FAILURE_ROWS, NEWEST, "systemd");
