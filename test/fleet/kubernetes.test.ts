import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import { describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import { ROOT } from "../support/paths.js";

interface Probe {
  httpGet: { path: string; port: number };
  periodSeconds?: number;
  failureThreshold?: number;
}

describe("deploy/kubernetes: the watchdog's verdict as Ollama's readiness", () => {
  const docs = loadAll(
    readFileSync(join(ROOT, "deploy/kubernetes/ollama-with-watchdog.yaml"), "utf8"),
  ) as Array<Record<string, never>>;
  const byKind = <T>(kind: string): T => docs.find((d) => d.kind === kind) as T;

  it("the sidecar's config is valid and the probes ask the health endpoint of a configured target", () => {
    const config = parseConfigText(
      byKind<{ data: Record<string, string> }>("ConfigMap").data["config.yaml"] ?? "",
      {},
    );
    const port = Number(config.listen.slice(config.listen.lastIndexOf(":") + 1));
    const pod = byKind<{ spec: { template: { spec: { containers: Array<Record<string, Probe>> } } } }>(
      "StatefulSet",
    ).spec.template.spec;
    const ollama = pod.containers.find((c) => (c as unknown as { name: string }).name === "ollama") as Record<
      string,
      Probe
    >;
    const readiness = ollama.readinessProbe as Probe;
    const liveness = ollama.livenessProbe as Probe;
    for (const probe of [readiness, liveness]) {
      expect(probe.httpGet.port).toBe(port);
      expect(config.targets.map((t) => `/targets/${t.name}/health`)).toContain(probe.httpGet.path);
    }
    // Readiness reacts within one period; liveness only after the watchdog had time to heal.
    expect((readiness.periodSeconds ?? 10) * (readiness.failureThreshold ?? 3)).toBeLessThanOrEqual(5);
    expect((liveness.periodSeconds ?? 10) * (liveness.failureThreshold ?? 3)).toBeGreaterThanOrEqual(
      config.remediation.verifyWithin / 1000,
    );
  });

  it("a Service routes to the pods' Ollama port (only ready pods get traffic)", () => {
    const service = byKind("Service") as {
      spec: { selector: Record<string, string>; ports: Array<{ targetPort: string }> };
    };
    expect(service.spec.selector).toEqual({ app: "ollama" });
    expect(service.spec.ports[0]?.targetPort).toBe("http");
  });
});
