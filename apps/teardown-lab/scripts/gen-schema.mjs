// Writes scenario.schema.json from the zod schema (run after `tsc -b`: pnpm --filter teardown-lab schema).
import { writeFileSync } from "node:fs";
import { scenarioJsonSchema } from "../dist/scenario.js";

const out = new URL("../scenario.schema.json", import.meta.url);
writeFileSync(out, `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`);
console.log(`wrote ${out.pathname}`);
