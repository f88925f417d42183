import { createHash } from "node:crypto";
import type { ModelSpec } from "./types.js";

/** A model the simulator can "pull"-free serve: everything /api/tags and /api/show report about it. */
export interface CatalogModel {
  name: string;
  sizeBytes: number;
  contextLength: number;
  parameterSize: string;
  /** Embedding-only: /api/embed answers, /api/generate and /api/chat answer 400. */
  embedding: boolean;
  family: string;
  quantization: string;
  /** sha256 hex of the (fake) model blob. */
  blobDigest: string;
  /** sha256 hex of the manifest, the `digest` Ollama lists. */
  digest: string;
  modifiedAt: string;
}

export const DEFAULT_MODELS: ModelSpec[] = [
  { name: "llama3.2:1b", sizeBytes: 1_321_098_329, contextLength: 131_072, parameterSize: "1.2B" },
  { name: "qwen2.5:0.5b", sizeBytes: 397_821_319, contextLength: 32_768, parameterSize: "494.03M" },
  {
    name: "nomic-embed-text:latest",
    sizeBytes: 274_302_450,
    contextLength: 2048,
    parameterSize: "137M",
    embedding: true,
  },
];

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** "llama3.2" → "llama3.2:latest"; names are matched the way Ollama matches them. */
export function normalizeModelName(name: string): string {
  return name.includes(":") ? name : `${name}:latest`;
}

export function buildCatalog(specs: ModelSpec[]): CatalogModel[] {
  return specs.map((spec) => {
    const name = normalizeModelName(spec.name);
    const family = spec.embedding ? "nomic-bert" : name.replace(/[:\d.].*$/, "") || "llama";
    return {
      name,
      sizeBytes: spec.sizeBytes ?? 1_000_000_000,
      contextLength: spec.contextLength ?? 32_768,
      parameterSize: spec.parameterSize ?? "1B",
      embedding: spec.embedding === true,
      family,
      quantization: "Q4_K_M",
      blobDigest: sha256(`blob:${name}`),
      digest: sha256(`manifest:${name}`),
      modifiedAt: "2025-09-30T12:00:00.000000000Z",
    };
  });
}

export function findModel(catalog: CatalogModel[], name: string | undefined): CatalogModel | undefined {
  if (!name) return undefined;
  const wanted = normalizeModelName(name);
  return catalog.find((model) => model.name === wanted);
}

/** Estimated memory of a loaded model: weights plus a KV cache that grows with num_ctx. */
export function loadedSizeBytes(model: CatalogModel, numCtx: number): number {
  return model.sizeBytes + numCtx * 131_072;
}

export function modelDetails(model: CatalogModel): Record<string, unknown> {
  return {
    parent_model: "",
    format: "gguf",
    family: model.family,
    families: [model.family],
    parameter_size: model.parameterSize,
    quantization_level: model.quantization,
  };
}
