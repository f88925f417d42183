/**
 * `node dist/bench/auth-flood.js [--cli dist/cli.js] [--targets 10] [--idle-seconds 30] [--flood-seconds 10]`
 *
 * A watchdog behind its web config (TLS + basic auth, bcrypt cost 10) under a wrong-password
 * flood: the real daemon (`<cli> run`, its V8 flags), N simulated targets in this process. Reports
 * its RSS idle (after one verified request: the first scrape), then during 20 concurrent
 * wrong-password loops: the latency of a right-password health check every 0.5 s, the daemon's
 * CPU and the answers the flood got. `--cli` points at another build to compare.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import bcrypt from "bcryptjs";
import { basicAuth, httpsGet, makeServerCertificate, startFlood } from "./lib/auth-flood.js";
import { sampleProcess } from "./lib/proc.js";
import { spread } from "./lib/stats.js";
import { type BenchTarget, sleep, startBenchTarget, titleProcess } from "./lib/target.js";

const MB = 1024 * 1024;
const PASSWORD = "bench password";

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

const cli = option("cli", fileURLToPath(new URL("../cli.js", import.meta.url)));
const targets = Number(option("targets", "10"));
const idleSeconds = Number(option("idle-seconds", "30"));
const floodSeconds = Number(option("flood-seconds", "10"));

const dir = mkdtempSync(join(tmpdir(), "owd-auth-flood-"));
const serverPattern = titleProcess(`auth-flood-${process.pid}`);
const sims: BenchTarget[] = [];
try {
  makeServerCertificate(dir);
  writeFileSync(
    join(dir, "web.yml"),
    `tls_server_config: { cert_file: server.crt, key_file: server.key }\nbasic_auth_users:\n  prometheus: ${bcrypt.hashSync(PASSWORD, 10)}\n`,
  );
  for (let i = 0; i < targets; i++)
    sims.push(await startBenchTarget({ dir: join(dir, `sim${i}`), serverPattern }));
  const config = {
    listen: "127.0.0.1:0",
    stateDir: join(dir, "state"),
    webConfig: join(dir, "web.yml"),
    targets: sims.map((sim, i) => ({
      name: `sim${i}`,
      url: sim.url,
      restart: { command: { argv: ["/bin/true"] } },
      processes: { server: sim.serverPattern, runner: sim.runnerPattern },
    })),
    gpu: { backend: "nvidia", nvidiaSmi: (sims[0] as BenchTarget).simulator.nvidiaSmiPath },
  };
  writeFileSync(join(dir, "config.yaml"), JSON.stringify(config));
  const child = spawn(process.execPath, [cli, "run", "--config", join(dir, "config.yaml")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  try {
    const startedUrl = () => /"url":"(https:\/\/[^"]+)"/.exec(output)?.[1];
    while (!startedUrl()) await sleep(100);
    const url = startedUrl() as string;
    const pid = child.pid as number;
    const ca = readFileSync(join(dir, "ca.pem"));
    const check = () =>
      httpsGet(`${url}/targets/sim0/health`, {
        ca,
        authorization: basicAuth("prometheus", PASSWORD),
        timeoutMs: 60_000,
      });
    const first = await check();
    console.log(`first (verifying) right-password check: ${first.status} in ${first.ms.toFixed(0)} ms`);

    const rss: number[] = [];
    for (let s = 0; s < idleSeconds; s++) {
      await sleep(1000);
      if (s >= idleSeconds / 2) rss.push(sampleProcess(pid).rssBytes / MB);
    }
    const idle = spread(rss);
    console.log(
      `idle RSS over the last ${rss.length} s: median ${idle?.median.toFixed(1)} MB (${idle?.min.toFixed(1)}–${idle?.max.toFixed(1)}), peak ${(sampleProcess(pid).peakRssBytes / MB).toFixed(1)} MB`,
    );

    const before = sampleProcess(pid);
    const started = performance.now();
    const flood = startFlood(`${url}/api/status`, { ca, user: "prometheus", concurrency: 20 });
    const latencies: number[] = [];
    const statuses: number[] = [];
    while (performance.now() - started < floodSeconds * 1000) {
      const answer = await check();
      latencies.push(answer.ms);
      statuses.push(answer.status);
      await sleep(500);
    }
    const cpu = sampleProcess(pid).schedCpuMs - before.schedCpuMs;
    const wall = performance.now() - started;
    const counts = await flood.stop();
    const latency = spread(latencies);
    console.log(
      `flood (20 concurrent wrong passwords, ${(wall / 1000).toFixed(1)} s): right-password checks ${latencies.length} (statuses ${[...new Set(statuses)].join(",")}), p50 ${latency?.median.toFixed(0)} ms, max ${latency?.max.toFixed(0)} ms; daemon CPU ${((100 * cpu) / wall).toFixed(0)} % of one core; RSS ${(sampleProcess(pid).rssBytes / MB).toFixed(1)} MB, peak ${(sampleProcess(pid).peakRssBytes / MB).toFixed(1)} MB; flood answers ${JSON.stringify(counts)}`,
    );
  } finally {
    child.kill("SIGKILL");
  }
} finally {
  for (const sim of sims) await sim.stop();
  rmSync(dir, { recursive: true, force: true });
}
