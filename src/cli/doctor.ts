export async function doctorCommand(_opts: { config?: string; root?: string }): Promise<number> {
  throw new Error("not implemented yet");
}
