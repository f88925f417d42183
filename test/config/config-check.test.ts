import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, CLI_ARGV } from "../support/paths.js";

/**
 * `config check` reads what `run` reads at start besides the config (the web config with its TLS
 * files, the fleet's password files), so that `config check … && systemctl restart` never restarts
 * into a watchdog that exits 2.
 */

let dir = "";

function write(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, body);
  return file;
}

/** A config whose target is never reached: `run` gets as far as reading the files, no farther. */
function config(name: string, extra: string): string {
  return write(
    name,
    [
      "listen: 127.0.0.1:0",
      `stateDir: ${join(dir, `state-${name}`)}`,
      "targets:",
      "  - { name: default, url: http://127.0.0.1:9 }",
      "gpu: { backend: none }",
      extra,
    ].join("\n"),
  );
}

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(CLI_ARGV[0] as string, [CLI, ...args], { encoding: "utf8", timeout: 20_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "owd-config-check-"));
  execFileSync(
    "/usr/bin/openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"].concat([
      "-keyout",
      "server.key",
      "-out",
      "server.crt",
    ]),
    { cwd: dir, stdio: "pipe" },
  );
  const hash = bcrypt.hashSync("s3cret", 4);
  write(
    "good-web.yml",
    `tls_server_config: { cert_file: server.crt, key_file: server.key }\nbasic_auth_users: { fleet: ${hash} }\n`,
  );
  write("plain-web.yml", "basic_auth_users: { fleet: s3cret }\n");
  write("not-a-key.pem", "not a key\n");
  write("bad-key-web.yml", "tls_server_config: { cert_file: server.crt, key_file: not-a-key.pem }\n");
  write("fleet.password", "s3cret\n");
  mkdirSync(join(dir, "a-directory"));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const peer = (name: string, passwordFile: string) =>
  `  - { name: ${name}, url: "https://${name}:11464", basicAuth: { username: fleet, passwordFile: ${passwordFile} } }`;

describe("config check: the files the config points at", () => {
  it("ok when the web config and every password file can be read", () => {
    const file = config(
      "good.yaml",
      [
        `webConfig: ${join(dir, "good-web.yml")}`,
        "fleet:",
        peer("gpu1", join(dir, "fleet.password")),
        peer("gpu2", join(dir, "fleet.password")),
      ].join("\n"),
    );
    const result = cli("config", "check", file);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`${file}: ok`);
  });

  it.each([
    ["a missing web config", () => `webConfig: ${join(dir, "nope.yml")}`, "webConfig", /nope\.yml: ENOENT/],
    [
      "a plain password in the web config",
      () => `webConfig: ${join(dir, "plain-web.yml")}`,
      "webConfig",
      /basic_auth_users\.fleet: expected a bcrypt hash/,
    ],
    [
      "a TLS key that is no key",
      () => `webConfig: ${join(dir, "bad-key-web.yml")}`,
      "webConfig",
      /tls_server_config: /,
    ],
    [
      "a missing password file",
      () =>
        ["fleet:", peer("gpu1", join(dir, "fleet.password")), peer("gpu2", join(dir, "nope.password"))].join(
          "\n",
        ),
      "fleet[1].basicAuth.passwordFile",
      /cannot read .*nope\.password \(ENOENT\)/,
    ],
    [
      "a password file that is a directory",
      () => ["fleet:", peer("gpu1", join(dir, "a-directory"))].join("\n"),
      "fleet[0].basicAuth.passwordFile",
      /cannot read .*a-directory \(EISDIR\)/,
    ],
  ])("%s: exit 2 naming the key, as run does", (what, extra, key, detail) => {
    const file = config(`${what.replaceAll(" ", "-")}.yaml`, extra());
    const check = cli("config", "check", file);
    expect(check.code, check.stdout).toBe(2);
    const line = check.stderr.split("\n").find((l) => l.startsWith(`${key}: `));
    expect(line, check.stderr).toMatch(detail);
    const run = cli("run", "--config", file);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(detail);
  });

  it("reports every problem at once", () => {
    const file = config(
      "all.yaml",
      [
        `webConfig: ${join(dir, "plain-web.yml")}`,
        "fleet:",
        peer("gpu1", join(dir, "nope1")),
        peer("gpu2", join(dir, "nope2")),
      ].join("\n"),
    );
    const check = cli("config", "check", file);
    expect(check.code).toBe(2);
    expect(check.stderr.trim().split("\n")).toEqual([
      `${file}:`,
      expect.stringMatching(/^webConfig: .*basic_auth_users\.fleet: expected a bcrypt hash/),
      expect.stringMatching(/^fleet\[0\]\.basicAuth\.passwordFile: cannot read .*nope1 \(ENOENT\)$/),
      expect.stringMatching(/^fleet\[1\]\.basicAuth\.passwordFile: cannot read .*nope2 \(ENOENT\)$/),
    ]);
  });
});
