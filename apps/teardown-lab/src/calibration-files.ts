// Node-only: the user's own calibration inputs and outputs — a measurement table (the format of
// calibration/*.json) and a fitted cost profile (the JSON `calibrate --out` writes and `--profile FILE`
// reads). Both are validated with zod: every error names the field, what was given and what is allowed.
import { readFileSync, statSync } from "node:fs";
import { type CostProfile, type CostTermName, defaultCost } from "@mmgather/mmu-gather";
import { COST_TERMS } from "@mmgather/teardown";
import { z } from "zod";
import type { CalibrationTable } from "./calibrate.js";
import { PRESET_NAMES } from "./presets.js";
import { PROFILE_NAMES, PROFILES } from "./profiles.js";
import { FOLIO_SIZES } from "./size.js";
import { VARIANTS } from "./spec.js";

/** A table or profile file that cannot be used: exit 2 with this one-line message. */
export class CalibrationFileError extends Error {
  override readonly name = "CalibrationFileError";
}

/** Largest calibration file read (a real one is a few KiB). */
const MAX_FILE_BYTES = 1 << 20;

const TERM_NAMES = COST_TERMS.map((t) => t.name) as [CostTermName, ...CostTermName[]];
const Ns = z.number({ error: "expected a number of ns" }).finite().min(0, { error: "expected ≥ 0 ns" });

const ProfileSchema = z.strictObject({
  name: z.string().min(1),
  source: z.string(),
  // Written by `calibrate --out`; a file from before it existed gets the unfitted priors' bound.
  ratioError: z
    .number({ error: "expected a fraction (0.2 = design ratios within ±20 %)" })
    .finite()
    .min(0)
    .max(10)
    .default(defaultCost.ratioError),
  ...Object.fromEntries(TERM_NAMES.map((t) => [t, Ns])),
});

const Variant = z.enum(VARIANTS, { error: `expected one of ${VARIANTS.join(", ")}` });
const Preset = z.enum(PRESET_NAMES as [string, ...string[]], {
  error: `expected one of ${PRESET_NAMES.join(", ")}`,
});
const Folio = z.enum(FOLIO_SIZES as [string, ...string[]], {
  error: `expected one of ${FOLIO_SIZES.join(", ")}`,
});
const Term = z.enum(TERM_NAMES, { error: "expected a cost term name (see the README's list)" });

const TableBase = {
  profile: z.string().min(1),
  machine: z.string(),
  source: z.string(),
  priors: z.enum(PROFILE_NAMES as [string, ...string[]], {
    error: `expected a built-in profile: ${PROFILE_NAMES.join(", ")}`,
  }),
  free: z.array(Term).min(1).max(6),
  ridge: z.number().finite().min(0),
  pcpPolicy: z.enum(["v6.5", "v6.7"]).optional(),
  pcpFreeHighBatch: z.boolean().optional(),
  kernel: z.string().optional(),
  host: z
    .strictObject({
      kernel: z.string(),
      cpu: z.string(),
      cores: z.number().int().positive(),
      thp: z.record(z.string(), z.string()),
      thpConfigured: z.boolean(),
      method: z.string(),
      skipped: z.array(z.string()),
    })
    .optional(),
};

const TableSchema = z
  .discriminatedUnion("kind", [
    z.strictObject({
      ...TableBase,
      kind: z.literal("absolute"),
      points: z
        .array(
          z.strictObject({
            id: z.string().min(1),
            preset: Preset,
            folio: Folio,
            pmd: z.boolean().optional(),
            op: z.enum(["exit", "munmap", "dontneed"]).optional(),
            size: z.string().optional(),
            dirty: z.number().min(0).max(1).optional(),
            variant: Variant,
            seconds: z.number().finite().positive(),
            min: z.number().finite().optional(),
            spread: z.number().finite().min(0).optional(),
            rounds: z.number().int().positive().optional(),
            flagged: z.boolean().optional(),
            layoutOk: z.boolean().optional(),
            layout: z.string().optional(),
            hostOp: z.string().optional(),
            baseline: z
              .strictObject({ seconds: z.number().finite().min(0), spread: z.number().finite().min(0) })
              .optional(),
          }),
        )
        .min(2),
    }),
    z.strictObject({
      ...TableBase,
      kind: z.literal("relative"),
      points: z
        .array(
          z.strictObject({
            id: z.string().min(1),
            label: z.string(),
            preset: Preset,
            folio: Folio,
            from: Variant,
            to: Variant,
            counters: z.union([z.literal("all"), z.array(z.string()).min(1)]),
            change: z.number().finite(),
          }),
        )
        .min(2),
    }),
  ])
  .superRefine((t, ctx) => {
    if (t.free.length >= t.points.length)
      ctx.addIssue({
        code: "custom",
        path: ["free"],
        message: `expected fewer free terms than points (${t.points.length}), got ${t.free.length}`,
      });
  });

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new CalibrationFileError(`cannot read ${what} ${path}: not a regular file`);
    if (st.size > MAX_FILE_BYTES)
      throw new CalibrationFileError(
        `cannot read ${what} ${path}: ${st.size} bytes, more than ${MAX_FILE_BYTES}`,
      );
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof CalibrationFileError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? "EIO";
    throw new CalibrationFileError(
      `cannot read ${what} ${path} (${code === "ENOENT" ? "no such file" : code})`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CalibrationFileError(`${what} ${path} is not JSON: ${(e as Error).message}`);
  }
}

function issues(path: string, what: string, error: z.ZodError): never {
  const first = error.issues[0];
  const at = first.path.length > 0 ? first.path.join(".") : "(top level)";
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : "";
  throw new CalibrationFileError(`${path} is not a valid ${what}: ${at}: ${first.message}${more}`);
}

/** Reads and validates a measurement table file. */
export function loadTableFile(path: string): CalibrationTable {
  const r = TableSchema.safeParse(readJson(path, "measurement table"));
  if (!r.success) issues(path, "measurement table", r.error);
  return r.data as CalibrationTable;
}

/** Reads and validates a cost-profile file (every cost term present, in ns ≥ 0). */
export function loadProfileFile(path: string): CostProfile {
  const r = ProfileSchema.safeParse(readJson(path, "cost profile"));
  if (!r.success) issues(path, "cost profile", r.error);
  return r.data as unknown as CostProfile;
}

/** `--profile`: a built-in profile's name, else a profile file. */
export function resolveProfile(nameOrFile: string): CostProfile {
  return PROFILES[nameOrFile] ?? loadProfileFile(nameOrFile);
}
