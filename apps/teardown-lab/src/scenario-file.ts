// Node-only: reads scenario files from disk.
import { readFileSync } from "node:fs";
import { parseScenarioData, type Scenario, ScenarioError, validateScenario } from "./scenario.js";

/** Reads a scenario file into an object, unvalidated. */
export function readScenarioData(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "EIO";
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : code;
    throw new ScenarioError(`cannot read scenario file ${path} (${why})`, []);
  }
  return parseScenarioData(text, path);
}

/** Reads and validates a scenario file. */
export function loadScenarioFile(path: string): Scenario {
  return validateScenario(readScenarioData(path), path);
}
