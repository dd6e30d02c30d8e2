// Node-only: reads scenario files from disk. The YAML library is loaded the first time a YAML file is
// read (a JSON file or a preset never loads it).
import { readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import type * as Yaml from "yaml";
import {
  parseScenarioData,
  type Scenario,
  ScenarioError,
  validateScenario,
  type YamlLoader,
} from "./scenario.js";

let yaml: typeof Yaml | null = null;

/** The `yaml` package, loaded on first use (its Node build is CommonJS: `require` loads it at once). */
export const loadYaml: YamlLoader = () => {
  yaml ??= createRequire(import.meta.url)("yaml") as typeof Yaml;
  return yaml;
};

/** Largest scenario file read (a real one is a few KiB). */
export const MAX_SCENARIO_FILE_BYTES = 1 << 20;

/** Reads a scenario file into an object, unvalidated: a regular file of at most 1 MiB. */
export function readScenarioData(path: string): Record<string, unknown> {
  let text: string;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw Object.assign(new Error("directory"), { code: "EISDIR" });
    if (!st.isFile()) throw new ScenarioError(`cannot read scenario file ${path}: not a regular file`, []);
    if (st.size > MAX_SCENARIO_FILE_BYTES)
      throw new ScenarioError(
        `cannot read scenario file ${path}: ${st.size} bytes, more than the ${MAX_SCENARIO_FILE_BYTES} a scenario may have`,
        [],
      );
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (err instanceof ScenarioError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? "EIO";
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : code;
    throw new ScenarioError(`cannot read scenario file ${path} (${why})`, []);
  }
  return parseScenarioData(text, path, loadYaml);
}

/** Reads and validates a scenario file. */
export function loadScenarioFile(path: string): Scenario {
  return validateScenario(readScenarioData(path), path);
}
