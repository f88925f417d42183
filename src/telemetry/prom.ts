/**
 * prom-client's metric classes, loaded from their own files. Its index also loads what the
 * daemon never uses: the default process metrics (with `@opentelemetry/api`, 51 modules), the
 * Pushgateway client, cluster aggregation and Summary (tdigest): +5.1 MB of RSS against +0.8 MB
 * for these four files (docs/performance.md, "What each dependency costs"). They are the same
 * classes the index exports (plain CommonJS files; the package has no `exports` map).
 */
import { createRequire } from "node:module";
import type * as PromClient from "prom-client";

const load = createRequire(import.meta.url);

export const Registry: typeof PromClient.Registry = load("prom-client/lib/registry.js");
export const Counter: typeof PromClient.Counter = load("prom-client/lib/counter.js");
export const Gauge: typeof PromClient.Gauge = load("prom-client/lib/gauge.js");
export const Histogram: typeof PromClient.Histogram = load("prom-client/lib/histogram.js");

export type Registry = PromClient.Registry;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
