export async function drillCommand(_opts: {
  config?: string;
  target?: string;
  timeout: string;
  json?: boolean;
}): Promise<number> {
  throw new Error("not implemented yet");
}
