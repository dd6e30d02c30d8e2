// The scenario file format (JSON or YAML), validated with zod. Every error names the
// field path, what was given and what is allowed.
import { readFileSync } from "node:fs";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { folioOrder, formatSize, parseSize } from "./size.js";

/** Largest VMA a scenario may map (64 GiB). */
export const MAX_VMA_BYTES = 64 * 1024 ** 3;
/** Most VMAs in one scenario. */
export const MAX_VMAS = 64;

const sizeText = 'a size such as 4096, "4K", "64K", "2M" or "1G"';

/** A byte size: a number of bytes or a string with a K/M/G suffix. */
const Size = z.union([z.number(), z.string()], { error: `expected ${sizeText}` }).transform((v, ctx) => {
  const bytes = typeof v === "number" ? v : parseSize(v);
  if (bytes === null || !Number.isSafeInteger(bytes) || bytes < 0) {
    ctx.addIssue({ code: "custom", message: `expected ${sizeText}`, input: v });
    return z.NEVER;
  }
  return bytes;
});

/** A page-aligned, non-zero size. */
const PageSize = Size.refine((b) => b > 0 && b % 4096 === 0, {
  error: (iss) => `expected a non-zero multiple of 4K, got ${String(iss.input)}`,
});

/** A folio size: a power of two from 4K to 2M. */
const FolioSize = Size.refine((b) => folioOrder(b) !== null && b <= 2 * 1024 * 1024, {
  error: (iss) => `expected a folio size 4K, 8K, 16K … 2M (a power of two), got ${String(iss.input)}`,
});

const Fraction = z
  .number({ error: "expected a number from 0 to 1" })
  .min(0, { error: "expected a number from 0 to 1" })
  .max(1, { error: "expected a number from 0 to 1" });

/** One folio size, or weights over several ({"4K": 1, "64K": 3}). */
const FolioPolicy = z.union([
  FolioSize,
  z
    .record(z.string(), z.number().positive({ error: "expected a positive weight" }))
    .superRefine((rec, ctx) => {
      const keys = Object.keys(rec);
      if (keys.length === 0) ctx.addIssue({ code: "custom", message: "expected at least one folio size" });
      for (const k of keys) {
        const b = parseSize(k);
        if (b === null || folioOrder(b) === null || b > 2 * 1024 * 1024) {
          ctx.addIssue({
            code: "custom",
            path: [k],
            message: `expected a folio size 4K … 2M as key, got "${k}"`,
          });
        }
      }
    }),
]);

export const VMA_KINDS = ["anon", "file-shared", "file-private", "shmem"] as const;
export const OPS = ["exit", "munmap", "dontneed"] as const;

const Vma = z.strictObject({
  name: z.string().min(1).max(64).optional(),
  kind: z.enum(VMA_KINDS, { error: `expected one of ${VMA_KINDS.join(", ")}` }),
  size: PageSize.refine((b) => b <= MAX_VMA_BYTES, {
    error: `expected at most ${formatSize(MAX_VMA_BYTES)}`,
  }),
  folio: FolioPolicy.default(4096),
  pmd: z.boolean({ error: "expected true or false" }).default(false),
  dirty: Fraction.default(0),
  swap: Fraction.default(0),
  mlock: z.boolean({ error: "expected true or false" }).default(false),
  exec: z.boolean({ error: "expected true or false" }).default(false),
});

const Op = z.strictObject({
  kind: z.enum(OPS, { error: `expected one of ${OPS.join(", ")}` }),
  vma: z.union([z.number().int().min(0), z.string().min(1)]).default(0),
  offset: Size.default(0),
  length: Size.optional(),
});

export const ScenarioSchema = z
  .strictObject({
    name: z.string().min(1).max(100).default("scenario"),
    description: z.string().max(2000).optional(),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .default(1),
    memory: PageSize.optional(),
    swap: Size.refine((b) => b % 4096 === 0, { error: "expected a multiple of 4K" }).optional(),
    cpus: z.number().int().min(0).max(64, { error: "expected at most 64 CPUs" }).default(0),
    forks: z.number().int().min(0).max(8, { error: "expected at most 8 forked children" }).default(0),
    vmas: z.array(Vma).min(1, { error: "expected at least one VMA" }).max(MAX_VMAS),
    op: Op,
  })
  .superRefine((s, ctx) => {
    if (s.op.kind === "exit") return;
    const idx = typeof s.op.vma === "number" ? s.op.vma : s.vmas.findIndex((v) => v.name === s.op.vma);
    if (idx < 0 || idx >= s.vmas.length) {
      ctx.addIssue({
        code: "custom",
        path: ["op", "vma"],
        input: s.op.vma,
        message: `expected a VMA index 0..${s.vmas.length - 1} or a VMA name, got ${JSON.stringify(s.op.vma)}`,
      });
      return;
    }
    const vma = s.vmas[idx];
    if (s.op.offset % 4096 !== 0) {
      ctx.addIssue({ code: "custom", path: ["op", "offset"], message: "expected a multiple of 4K" });
    }
    const length = s.op.length ?? vma.size - s.op.offset;
    if (length <= 0 || length % 4096 !== 0 || s.op.offset + length > vma.size) {
      ctx.addIssue({
        code: "custom",
        path: ["op", "length"],
        message: `expected a non-zero multiple of 4K with offset + length ≤ the VMA size ${formatSize(vma.size)}`,
      });
    }
  });

/** A validated scenario (sizes in bytes, defaults filled in). */
export type Scenario = z.output<typeof ScenarioSchema>;
/** A scenario as written in a file. */
export type ScenarioInput = z.input<typeof ScenarioSchema>;

/** Thrown for any invalid scenario: the CLI prints `message` and exits 2. */
export class ScenarioError extends Error {
  readonly code = "BAD_SCENARIO" as const;
  constructor(
    message: string,
    readonly issues: readonly string[],
  ) {
    super(message);
    this.name = "ScenarioError";
  }
}

function pathText(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out === "" ? String(p) : `.${String(p)}`;
  return out === "" ? "(scenario)" : out;
}

function givenText(input: unknown): string {
  if (input === undefined) return "nothing";
  const json = JSON.stringify(input);
  return json === undefined ? String(input) : json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

/** Validates an already-parsed object. */
export function validateScenario(data: unknown, source = "scenario"): Scenario {
  const result = ScenarioSchema.safeParse(data, { reportInput: true });
  if (result.success) return result.data;
  const issues = result.error.issues.map((iss) => {
    const where = pathText(iss.path);
    if (iss.code === "unrecognized_keys") {
      return `${where}: unknown key(s) ${iss.keys.map((k) => `"${k}"`).join(", ")}; allowed keys are listed in scenario.schema.json`;
    }
    const given = "input" in iss ? `; got ${givenText(iss.input)}` : "";
    const msg = iss.message.includes(", got ") ? iss.message : `${iss.message}${given}`;
    return `${where}: ${msg}`;
  });
  throw new ScenarioError(`${source} is not a valid scenario:\n  ${issues.join("\n  ")}`, issues);
}

/** Parses JSON or YAML text (chosen by file extension, else by content) and validates it. */
export function parseScenarioText(text: string, source: string): Scenario {
  if (text.trim() === "") throw new ScenarioError(`${source} is empty: expected a JSON or YAML scenario`, []);
  let data: unknown;
  const isJson = source.endsWith(".json") || /^\s*[[{]/.test(text);
  try {
    data = isJson ? JSON.parse(text) : parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    const what = isJson ? "JSON" : "YAML";
    const detail =
      err instanceof YAMLParseError || err instanceof SyntaxError ? err.message.split("\n")[0] : String(err);
    throw new ScenarioError(`${source} is not valid ${what}: ${detail}`, []);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ScenarioError(`${source}: expected an object with "vmas" and "op", got ${givenText(data)}`, []);
  }
  return validateScenario(data, source);
}

/** Reads and validates a scenario file. */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "EIO";
    throw new ScenarioError(`cannot read scenario file ${path} (${code})`, []);
  }
  return parseScenarioText(text, path);
}

/** The JSON Schema of the scenario format (input side), as shipped in scenario.schema.json. */
export function scenarioJsonSchema(): unknown {
  return z.toJSONSchema(ScenarioSchema, { io: "input", unrepresentable: "any" });
}
