import { type FaultModule, numberParam, stringParam } from "./fault.js";

export const errors: FaultModule = {
  name: "errors",
  row: "F9",
  summary: "generations fail with HTTP 500 and an Ollama error message",
  params: 'status=500 message="an error was encountered while running the model: unexpected EOF"',
  persistent: false,
  activate: (spec) => ({
    effects: {
      generateError: {
        status: numberParam(spec, "status", 500),
        message: stringParam(
          spec,
          "message",
          "an error was encountered while running the model: unexpected EOF",
        ),
      },
    },
  }),
};
