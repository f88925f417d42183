export async function demoCommand(_opts: { freezeAfter: string; port: string }): Promise<number> {
  throw new Error("not implemented yet");
}
