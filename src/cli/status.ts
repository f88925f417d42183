export async function statusCommand(_opts: {
  config?: string;
  json?: boolean;
  url?: string;
}): Promise<number> {
  throw new Error("not implemented yet");
}
