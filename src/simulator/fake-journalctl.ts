/**
 * The `journalctl` stand-in as a process of its own, for when the simulator's tool socket does not
 * answer (its process is gone): reads the server log (file in FAKE_JOURNALCTL_FILE, set by the
 * wrapper the simulator writes). The answer itself: ./tool-answers.ts.
 */
import { JOURNAL_FILE_ENV } from "./journal-file.js";
import { answerAsProcess, journalctlAnswer } from "./tool-answers.js";

answerAsProcess(journalctlAnswer(process.argv.slice(2), process.env[JOURNAL_FILE_ENV]));
