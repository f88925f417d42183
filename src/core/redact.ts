/**
 * How a configured command is shown outside the config (action results, hence the ledger, logs,
 * incident reports, /api/status and the page): the program only. Its arguments may carry a secret
 * (a bearer token, a password) and stay in the config file.
 */
export function shownCommand(argv: readonly string[]): string {
  const hidden = argv.length - 1;
  if (hidden <= 0) return argv[0] ?? "";
  return `${argv[0]} (+${hidden} argument${hidden === 1 ? "" : "s"} not shown)`;
}
