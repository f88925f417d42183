/**
 * Output for node_exporter's textfile collector (`textfile:` in config): the same families as
 * `/metrics`, without timestamps, written atomically (temp file in the same directory, fsync,
 * rename) so node_exporter never reads a torn file. The file name must end in `.prom`.
 */
import { writeFileAtomic } from "../core/fs.js";
import type { Telemetry } from "./metrics.js";

/** Renders the metrics and replaces `path` atomically. */
export async function writeTextfile(path: string, telemetry: Telemetry): Promise<void> {
  const text = await telemetry.render();
  writeFileAtomic(path, text.endsWith("\n") ? text : `${text}\n`);
}
