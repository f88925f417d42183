export async function simulateCommand(_opts: {
  port: string;
  host: string;
  fault?: string;
  listFaults?: boolean;
  stateDir?: string;
}): Promise<number> {
  throw new Error("not implemented yet");
}
