import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { request } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { load as parse } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basicAuth as basic, makeServerCertificate } from "../../bench/lib/auth-flood.js";
import { sleep } from "../../bench/lib/target.js";
import { ConfigError, parseConfig } from "../../src/config/load.js";
import { silentLogger } from "../../src/core/log.js";
import { Watchdog } from "../../src/daemon/watchdog.js";
import { basicAuthenticator, loadWebConfig } from "../../src/server/web-config.js";
import { launchChromium } from "../support/browser.js";
import { ROOT } from "../support/paths.js";
import { type Prometheus, startPrometheus } from "../support/prometheus.js";
import { waitFor } from "../support/wait.js";
import { haproxyCommand, Processes, parseServerStats, requireTools } from "./netns.js";

let dir = "";
const PASSWORD = "correct horse battery staple";

function writeWebConfig(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, body);
  return file;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "owd-web-"));
  makeServerCertificate(dir);
  writeFileSync(join(dir, "password"), `${PASSWORD}\n`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("web config file (Prometheus exporter format)", () => {
  it("reads TLS files relative to itself and bcrypt users", () => {
    const hash = bcrypt.hashSync(PASSWORD, 4);
    const file = writeWebConfig(
      "ok.yml",
      `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: ${hash}\n`,
    );
    const web = loadWebConfig(file);
    expect(web.tls?.cert.toString()).toContain("BEGIN CERTIFICATE");
    expect([...web.users.keys()]).toEqual(["prometheus"]);
  });

  it.each([
    [
      "unknown key",
      "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca: c\n",
      /tls_server_config\.client_ca/,
    ],
    [
      "plain password",
      "basic_auth_users:\n  alice: secret\n",
      /basic_auth_users\.alice: expected a bcrypt hash/,
    ],
    [
      "missing key file",
      "tls_server_config:\n  cert_file: server.crt\n  key_file: nope.key\n",
      /tls_server_config\.key_file: cannot read .*nope\.key \(ENOENT\)/,
    ],
  ])("%s → a config error naming the key", (_what, body, message) => {
    const file = writeWebConfig("bad.yml", body);
    expect(() => loadWebConfig(file)).toThrow(ConfigError);
    expect(() => loadWebConfig(file)).toThrow(message);
  });

  it("basic auth: right password in, wrong password and unknown user out", async () => {
    const check = basicAuthenticator(new Map([["alice", bcrypt.hashSync("s3cret", 4)]]));
    expect(await check(basic("alice", "s3cret"))).toBe("ok");
    expect(await check(basic("alice", "s3cret"))).toBe("ok"); // remembered
    expect(await check(basic("alice", "wrong"))).toBe("denied");
    expect(await check(basic("bob", "s3cret"))).toBe("denied");
    expect(await check(undefined)).toBe("denied");
    expect(await check("Bearer x")).toBe("denied");
  });

  it("basic auth: one bcrypt compare at a time and four waiting, beyond them busy; remembered pairs pass", async () => {
    const check = basicAuthenticator(new Map([["alice", bcrypt.hashSync("s3cret", 4)]]));
    expect(await check(basic("alice", "s3cret"))).toBe("ok");
    await sleep(100); // the slot stays taken for a while after each compare
    const wrong = Array.from({ length: 10 }, (_, i) => check(basic(i % 2 ? "alice" : "bob", `wrong${i}`)));
    expect(await check(basic("alice", "s3cret"))).toBe("ok");
    const results = await Promise.all(wrong);
    expect(results.slice(0, 5)).toEqual(Array(5).fill("denied"));
    expect(results.slice(5)).toEqual(Array(5).fill("busy"));
    expect(await check(basic("alice", "wrong"))).toBe("denied");
  });
});

describe("an exposed watchdog behind its web config", () => {
  let watchdog: Watchdog;
  let prometheus: Prometheus | undefined;
  let port = 0;

  beforeAll(async () => {
    const webConfig = writeWebConfig(
      "web.yml",
      `tls_server_config: { cert_file: server.crt, key_file: server.key }\nbasic_auth_users:\n  prometheus: ${bcrypt.hashSync(PASSWORD, 10)}\n`,
    );
    const config = parseConfig(
      {
        listen: "127.0.0.1:0",
        stateDir: join(dir, "state"),
        webConfig,
        interval: "1s",
        targets: [
          { name: "default", url: "http://127.0.0.1:9", restart: { command: { argv: ["/bin/true"] } } },
        ],
        remediation: { dryRun: true },
        gpu: { backend: "none" },
      },
      {},
    );
    watchdog = await Watchdog.start({ config, log: silentLogger() });
    port = Number(new URL(watchdog.url).port);
  });

  afterAll(async () => {
    await prometheus?.stop();
    await watchdog?.stop();
  });

  function get(
    path: string,
    authorization?: string,
  ): Promise<{ status: number; headers: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port,
          path,
          ca: readFileSync(join(dir, "ca.pem")),
          headers: authorization ? { authorization } : {},
          timeout: 5000,
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        },
      );
      req.on("timeout", () => req.destroy(new Error("no answer")));
      req.on("error", reject);
      req.end();
    });
  }

  it("serves HTTPS and asks every request for the credentials", async () => {
    expect(watchdog.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const anonymous = await get("/api/status");
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers["www-authenticate"]).toMatch(/^Basic realm="ollama-watchdog"/);
    const basic = (password: string) => `Basic ${Buffer.from(`prometheus:${password}`).toString("base64")}`;
    expect((await get("/targets/default/health", basic("wrong"))).status).toBe(401);
    expect((await get("/api/status", basic(PASSWORD))).status).toBe(200);
    expect([200, 503]).toContain((await get("/targets/default/health", basic(PASSWORD))).status);
  });

  it("a real Prometheus scrapes it with deploy/prometheus/fleet's basic_auth + tls_config and file_sd", async () => {
    const example = parse(readFileSync(join(ROOT, "deploy/prometheus/fleet/prometheus.yml"), "utf8")) as {
      scrape_configs: Array<Record<string, unknown> & { job_name: string }>;
    };
    const job = example.scrape_configs[0] as Record<string, unknown> & { job_name: string };
    expect(job).toMatchObject({ scheme: "https", basic_auth: { username: "prometheus" } });
    writeFileSync(join(dir, "targets.yml"), `- targets: ["127.0.0.1:${port}"]\n  labels: { rack: r1 }\n`);
    const { job_name, ...rest } = job;
    prometheus = await startPrometheus({
      jobs: [
        {
          job: job_name,
          targets: [],
          extra: {
            ...rest,
            basic_auth: { username: "prometheus", password_file: join(dir, "password") },
            tls_config: { ca_file: join(dir, "ca.pem") },
            file_sd_configs: [{ files: [join(dir, "targets.yml")], refresh_interval: "1s" }],
          },
        },
      ],
    });
    const [target] = await prometheus.waitForTargetsUp(30_000);
    expect(target?.scrapeUrl).toBe(`https://127.0.0.1:${port}/metrics`);
    expect(target?.labels.rack).toBe("r1");
    const samples = await waitFor(async () => {
      const result = await (prometheus as Prometheus).query(
        'ollama_watchdog_build_info{job="ollama-watchdog"}',
      );
      return result.length ? result : undefined;
    });
    expect(samples[0]?.metric.instance).toBe(`127.0.0.1:${port}`);
  }, 60_000);

  it("HAProxy checks it with the recipe's TLS + basic-auth variant (deploy/haproxy/haproxy.cfg)", async () => {
    requireTools();
    const work = mkdtempSync(join(tmpdir(), "owd-haproxy-tls-"));
    const haproxy = new Processes();
    try {
      // The recipe as an operator edits it for watchdogs with a webConfig: the two additions its
      // comments give, one backend per password (the right one and a wrong one).
      const recipe = readFileSync(join(ROOT, "deploy/haproxy/haproxy.cfg"), "utf8");
      const backend = (name: string, password: string) => {
        const basic = Buffer.from(`prometheus:${password}`).toString("base64");
        const block = recipe.slice(recipe.search(/^backend ollama$/m));
        const edited = block
          .replace(/^backend ollama$/m, `backend ${name}`)
          .replace(/^(\s*http-check send .*)$/m, `$1 hdr Authorization "Basic ${basic}"`)
          .replace(/^(\s*default-server .*)$/m, `$1 check-ssl verify required ca-file ${join(dir, "ca.pem")}`)
          .replace(/check port 11464 inter 2s/, `check port ${port} inter 100ms`)
          .replace(/(\n\s*server \S+ \S+)+/, "\n    server host1 127.0.0.1:9");
        expect(edited).toContain(`hdr Authorization "Basic ${basic}"`);
        expect(edited).toContain("check-ssl verify required ca-file");
        return edited;
      };
      const admin = join(work, "admin.sock");
      const head = recipe
        .slice(0, recipe.indexOf("frontend ollama"))
        .replace(/stats socket \S+/, `stats socket ${admin}`);
      const config = `${head}\n${backend("right", PASSWORD)}\n${backend("wrong", "not the password")}`;
      writeFileSync(join(work, "haproxy.cfg"), config);
      const check = spawnSync("/usr/sbin/haproxy", ["-c", "-f", join(work, "haproxy.cfg")], {
        encoding: "utf8",
      });
      expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
      haproxy.start(["/usr/sbin/haproxy", "-db", "-f", join(work, "haproxy.cfg")], join(work, "haproxy.log"));

      // Each check's outcome as HAProxy reports it: the HTTP code it got, or the layer that failed.
      const checked = async (backendName: string) => {
        const stats = parseServerStats(await haproxyCommand(admin, "show stat"), backendName).get("host1");
        return stats?.check_code ? stats : undefined;
      };
      const right = await waitFor(() => checked("right").catch(() => undefined), {
        timeoutMs: 15_000,
        what: "HAProxy's first check with the right password",
      });
      const wrong = await waitFor(() => checked("wrong").catch(() => undefined), {
        timeoutMs: 15_000,
        what: "HAProxy's first check with a wrong password",
      });
      // Through TLS (the CA verified) and the password, the check reaches the health endpoint and
      // gets the watchdog's own verdict on its target (here unreachable, so 503: out of rotation).
      const health = await get(
        "/targets/default/health",
        `Basic ${Buffer.from(`prometheus:${PASSWORD}`).toString("base64")}`,
      );
      expect({ code: right.check_code, server: "right" }).toEqual({
        code: String(health.status),
        server: "right",
      });
      expect(right.check_status).toMatch(/^L7(OK|STS)$/);
      expect({ code: wrong.check_code, status: wrong.check_status }).toEqual({
        code: "401",
        status: "L7STS",
      });
    } finally {
      await haproxy.killAll();
      rmSync(work, { recursive: true, force: true });
    }
  });

  it("a page on another origin cannot read /api/status (no permissive CORS)", async () => {
    // Plain HTTP here, so that nothing but the same-origin policy can stop the page (the browser
    // would refuse the test CA anyway); a server that does send CORS headers is the control.
    const plain = await Watchdog.start({
      config: parseConfig(
        {
          listen: "127.0.0.1:0",
          stateDir: join(dir, "state-plain"),
          targets: [
            { name: "default", url: "http://127.0.0.1:9", restart: { command: { argv: ["/bin/true"] } } },
          ],
          gpu: { backend: "none" },
        },
        {},
      ),
      log: silentLogger(),
    });
    const servers: Server[] = [];
    const serve = async (host: string, handler: Parameters<typeof createServer>[1]) => {
      const server = createServer(handler);
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, host, resolve));
      return `http://${host}:${(server.address() as AddressInfo).port}`;
    };
    const pageOrigin = await serve("127.0.0.2", (_req, res) =>
      res.writeHead(200, { "content-type": "text/html" }).end("<p>another site</p>"),
    );
    const permissive = await serve("127.0.0.3", (_req, res) =>
      res.writeHead(200, { "access-control-allow-origin": "*" }).end('{"targets":[]}'),
    );
    const profile = mkdtempSync(join(tmpdir(), "owd-cors-"));
    const browser = await launchChromium(profile);
    try {
      const page = await browser.newPage();
      await page.goto(`${pageOrigin}/`);
      const read = (url: string) =>
        page.evaluate(async (u) => {
          try {
            const response = await fetch(u);
            return `read ${response.status}: ${(await response.text()).slice(0, 40)}`;
          } catch (error) {
            return `blocked: ${(error as Error).message}`;
          }
        }, url);
      expect(await read(`${permissive}/api/status`)).toBe('read 200: {"targets":[]}');
      expect(await read(`${plain.url}/api/status`)).toMatch(/^blocked: /);
      expect(await read(`${plain.url}/targets/default/health`)).toMatch(/^blocked: /);
    } finally {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
      for (const server of servers) server.close();
      await plain.stop();
    }
  }, 60_000);
});
