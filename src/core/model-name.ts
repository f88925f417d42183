/** Ollama's model names: "llama3.2" means "llama3.2:latest" (`types/model/name.go`, the default tag). */
export function sameModel(a: string, b: string): boolean {
  const full = (name: string) => (name.includes(":") ? name : `${name}:latest`);
  return full(a) === full(b);
}
