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

/** Shorter arguments are left in output: too common to be secrets, and scrubbing them garbles it. */
const MIN_SCRUBBED_LENGTH = 4;

/**
 * A command's own output (stderr in an error) with its arguments replaced by "…": programs echo
 * what they were given (`env: unrecognized option '--token=…'`, `set -x`). Each argument is
 * scrubbed whole, and the value of a `name=value` argument on its own.
 */
export function scrubArguments(text: string, argv: readonly string[]): string {
  const secrets = argv
    .slice(1)
    .flatMap((arg) => {
      const value = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : undefined;
      return value === undefined ? [arg] : [arg, value];
    })
    .filter((secret) => secret.length >= MIN_SCRUBBED_LENGTH)
    .sort((a, b) => b.length - a.length);
  return secrets.reduce((scrubbed, secret) => scrubbed.split(secret).join("…"), text);
}
