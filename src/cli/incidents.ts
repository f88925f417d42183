export async function incidentsListCommand(_opts: { config?: string; json?: boolean }): Promise<number> {
  throw new Error("not implemented yet");
}
export async function incidentsShowCommand(
  _id: string,
  _opts: { config?: string; markdown?: boolean; json?: boolean },
): Promise<number> {
  throw new Error("not implemented yet");
}
