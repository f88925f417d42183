export async function runCommand(_opts: { config?: string }): Promise<number> {
  throw new Error("not implemented yet");
}
