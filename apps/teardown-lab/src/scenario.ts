// The scenario file format (JSON or YAML), validated with zod. Every error names the
// field path, what was given and what is allowed. Browser-safe (files are read in scenario-file.ts).

import { NR_PAGES_KERNELS } from "@mmgather/mmu-gather";
import type * as Yaml from "yaml";
import { z } from "zod";
import { folioOrder, formatSize, parseSize } from "./size.js";

/** Largest VMA a scenario may map (64 GiB). */
export const MAX_VMA_BYTES = 64 * 1024 ** 3;
/** Largest physical memory the model can address (PTE pfn field: 26 bits). */
export const MAX_MEMORY_BYTES = 255 * 1024 ** 3;
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

/** Mapping kinds; "pfnmap" is a driver's remap_pfn_range of device memory (VM_PFNMAP, shared). */
export const VMA_KINDS = ["anon", "file-shared", "file-private", "shmem", "pfnmap"] as const;
export const OPS = ["exit", "munmap", "dontneed"] as const;
/**
 * What a second thread may run concurrently: munmap / dontneed of the same mm (not next to exit, which
 * takes the whole mm), writeback of a file VMA's dirty page cache (a flusher thread), swapoff of the
 * swap device, a driver revoking a pfnmap VMA's device memory (unmap_mapping_range in a kernel
 * thread) — these three next to any op —, NUMA balancing's hinting scan of a VMA range (a thread of
 * the same mm: not next to exit), page migration of an anon VMA range (migrate_pages(2) on another
 * CPU, next to any op), a KVM vCPU faulting guest pages of a VMA range in (needs kvm: true; a thread
 * of the process: not next to exit), or khugepaged retracting the page tables of PTE-mapped file THPs
 * in a file or shmem VMA's range (a kernel thread, next to any op).
 */
export const CONCURRENT_OPS = [
  "munmap",
  "dontneed",
  "writeback",
  "swapoff",
  "revoke",
  "numa",
  "migrate",
  "kvm-fault",
  "khugepaged",
] as const;

const Bool = z.boolean({ error: "expected true or false" });

const Vma = z
  .strictObject({
    name: z.string().min(1).max(64).optional(),
    kind: z.enum(VMA_KINDS, { error: `expected one of ${VMA_KINDS.join(", ")}` }),
    size: PageSize.refine((b) => b <= MAX_VMA_BYTES, {
      error: `expected at most ${formatSize(MAX_VMA_BYTES)}`,
    }),
    folio: FolioPolicy.default(4096),
    pmd: Bool.default(false),
    dirty: Fraction.default(0),
    swap: Fraction.default(0),
    keepInSwapCache: Bool.default(false),
    mlock: Bool.default(false),
    populate: Fraction.default(1),
    /** Anon VMAs: the fraction of fault-ins that are read faults (the zero page / huge zero folio). */
    readFraction: Fraction.default(0),
    splitAt: Size.optional(),
    /** With fork: the fraction of this VMA's private pages the forked child still maps. */
    shared: Fraction.default(1),
  })
  .superRefine((v, ctx) => {
    if (v.swap > 0 && v.kind !== "anon") {
      ctx.addIssue({
        code: "custom",
        path: ["swap"],
        input: v.swap,
        message: `swap-out applies to anon VMAs only, this one is "${v.kind}"; use 0`,
      });
    }
    if (v.readFraction > 0 && v.kind !== "anon") {
      ctx.addIssue({
        code: "custom",
        path: ["readFraction"],
        input: v.readFraction,
        message: `read faults map the zero page in anon VMAs only (a read fault of a ${v.kind} VMA maps its page cache); use 0`,
      });
    }
    if (v.dirty > 0 && v.kind === "anon") {
      ctx.addIssue({
        code: "custom",
        path: ["dirty"],
        input: v.dirty,
        message: "dirty applies to file and shmem VMAs (anon pages are always dirty); use 0",
      });
    }
    if (v.kind === "pfnmap") {
      // remap_pfn_range maps every page of the VMA at mmap time with order-0 special PTEs.
      for (const [key, bad, use] of [
        ["pmd", v.pmd, "false"],
        ["folio", v.folio !== 4096, "4K"],
        ["populate", v.populate !== 1, "1"],
        ["dirty", v.dirty > 0, "0"],
      ] as const) {
        if (bad)
          ctx.addIssue({
            code: "custom",
            path: [key],
            input: v[key],
            message: `a pfnmap VMA is device memory mapped whole by remap_pfn_range (no folios, no page cache); use ${use}`,
          });
      }
    }
    if (v.splitAt !== undefined && (v.splitAt % 4096 !== 0 || v.splitAt <= 0 || v.splitAt >= v.size)) {
      ctx.addIssue({
        code: "custom",
        path: ["splitAt"],
        input: v.splitAt,
        message: `expected a multiple of 4K strictly inside the VMA (0 < splitAt < ${formatSize(v.size)}), got ${v.splitAt}`,
      });
    }
  });

const Op = z.strictObject({
  kind: z.enum(OPS, { error: `expected one of ${OPS.join(", ")}` }),
  vma: z
    .union([z.number().int().min(0), z.string().min(1)], { error: "expected a VMA index or name" })
    .default(0),
  offset: Size.default(0),
  length: Size.optional(),
});

const ConcurrentOp = Op.extend({
  kind: z.enum(CONCURRENT_OPS, { error: `expected one of ${CONCURRENT_OPS.join(", ")}` }),
});

type OpInput = z.output<typeof Op> | z.output<typeof ConcurrentOp>;

/** The index of the VMA an operation names (by index or by name); -1 when no VMA has that name. */
function opVmaIndex(op: { vma: number | string }, vmas: readonly { name?: string }[]): number {
  return typeof op.vma === "number" ? op.vma : vmas.findIndex((v) => v.name === op.vma);
}

/** The VMA kinds a concurrent thread needs, and what it says otherwise. */
const CONCURRENT_VMA_KINDS = {
  writeback: {
    kinds: ["file-shared", "file-private"],
    message: (kind: string) =>
      `writeback needs a file VMA (file-shared or file-private), got ${kind}${kind === "shmem" ? " (shmem is never written back)" : ""}`,
  },
  migrate: {
    kinds: ["anon"],
    message: (kind: string) =>
      `migrate moves the anon folios of a VMA range and needs an anon VMA, got ${kind}`,
  },
  khugepaged: {
    kinds: ["file-shared", "file-private", "shmem"],
    message: (kind: string) =>
      `khugepaged collapses file and shmem THPs and needs a file or shmem VMA, got ${kind}`,
  },
  revoke: {
    kinds: ["pfnmap"],
    message: (kind: string) => `revoke unmaps a driver's device file and needs a pfnmap VMA, got ${kind}`,
  },
} as const satisfies Record<string, { kinds: readonly string[]; message: (kind: string) => string }>;

/** Actors that are threads of the process itself: none runs once it exits (why, for the error). */
const NOT_BESIDE_EXIT = {
  numa: "the NUMA hinting scan runs in a thread of the mm (task_numa_work): not next to exit",
  "kvm-fault": "a vCPU is a thread of the process: it does not run next to exit",
} as const;

function checkRange(
  op: OpInput,
  vmas: readonly { name?: string; size: number }[],
  at: string,
  ctx: z.RefinementCtx,
): void {
  if (op.kind === "exit") return;
  const idx = opVmaIndex(op, vmas);
  if (idx < 0 || idx >= vmas.length) {
    ctx.addIssue({
      code: "custom",
      path: [at, "vma"],
      input: op.vma,
      message: `expected a VMA index 0..${vmas.length - 1} or a VMA name, got ${JSON.stringify(op.vma)}`,
    });
    return;
  }
  const vma = vmas[idx];
  if (op.offset % 4096 !== 0 || op.offset >= vma.size) {
    ctx.addIssue({
      code: "custom",
      path: [at, "offset"],
      input: op.offset,
      message: `expected a multiple of 4K below the VMA size ${formatSize(vma.size)}, got ${op.offset}`,
    });
    return;
  }
  const length = op.length ?? vma.size - op.offset;
  if (length <= 0 || length % 4096 !== 0 || op.offset + length > vma.size) {
    ctx.addIssue({
      code: "custom",
      path: [at, "length"],
      input: op.length,
      message: `expected a non-zero multiple of 4K with offset + length ≤ the VMA size ${formatSize(vma.size)}, got ${length}`,
    });
  }
}

/** An integer in [lo, hi] whose every refusal says so. */
function intIn(lo: number, hi: number) {
  const error = `expected an integer from ${lo} to ${hi}`;
  return z.number({ error }).int({ error }).min(lo, { error }).max(hi, { error });
}

export const ScenarioSchema = z
  .strictObject({
    name: z.string().min(1).max(100).default("scenario"),
    description: z.string().max(2000).optional(),
    seed: intIn(0, 2 ** 32 - 1).default(1),
    memory: PageSize.refine((b) => b <= MAX_MEMORY_BYTES, {
      error: `expected at most ${formatSize(MAX_MEMORY_BYTES)} (the model's PTEs hold page frame numbers below 2^26)`,
    }).optional(),
    swap: Size.refine((b) => b % 4096 === 0 && b <= MAX_VMA_BYTES, {
      error: `expected a multiple of 4K, at most ${formatSize(MAX_VMA_BYTES)}`,
    }).optional(),
    cpus: intIn(0, 64).default(0),
    lazyCpus: intIn(0, 63).default(0),
    devices: intIn(0, 8).default(0),
    kvm: Bool.default(false),
    gupFast: intIn(0, 62).default(0),
    tlbEntries: intIn(16, 65536).default(2048),
    touch: Fraction.default(1),
    kernel: z
      .enum(NR_PAGES_KERNELS, { error: `expected one of ${NR_PAGES_KERNELS.join(", ")}` })
      .default("6.18"),
    fork: Bool.default(false),
    target: z.enum(["parent", "child"], { error: "expected parent or child" }).default("parent"),
    exitedChildren: intIn(0, 8).default(0),
    vmas: z
      .array(Vma, { error: "expected a list of VMAs" })
      .min(1, { error: "expected at least one VMA" })
      .max(MAX_VMAS, { error: `expected at most ${MAX_VMAS} VMAs` }),
    op: Op,
    concurrentOp: ConcurrentOp.optional(),
  })
  .superRefine((s, ctx) => {
    checkRange(s.op, s.vmas, "op", ctx);
    const maxLazy = Math.max(0, s.cpus - (s.concurrentOp === undefined ? 1 : 2));
    if (s.lazyCpus > maxLazy)
      ctx.addIssue({
        code: "custom",
        path: ["lazyCpus"],
        input: s.lazyCpus,
        message: `expected at most ${maxLazy}: CPU 0 runs the operation${s.concurrentOp === undefined ? "" : " and CPU 1 the concurrent one"}, of ${s.cpus} CPUs`,
      });
    const maxGup = Math.max(0, s.cpus - s.lazyCpus - (s.concurrentOp === undefined ? 1 : 2));
    if (s.gupFast > maxGup)
      ctx.addIssue({
        code: "custom",
        path: ["gupFast"],
        input: s.gupFast,
        message: `expected at most ${maxGup}: the walks run on CPUs that neither run the operation${s.concurrentOp === undefined ? "" : "s"} nor are lazy`,
      });
    if (s.gupFast > 0 && s.op.kind === "exit")
      ctx.addIssue({
        code: "custom",
        path: ["gupFast"],
        input: s.gupFast,
        message:
          "gup_fast walks the calling thread's mm: no thread of an exiting process runs, use munmap or dontneed",
      });
    if (s.kvm && s.cpus < 1)
      ctx.addIssue({
        code: "custom",
        path: ["kvm"],
        input: s.kvm,
        message: "a KVM guest's sptes are checked with the CPU model: expected cpus ≥ 1",
      });
    if (s.devices > 0 && s.cpus < 1)
      ctx.addIssue({
        code: "custom",
        path: ["devices"],
        input: s.devices,
        message: "devices are checked with the CPU model: expected cpus ≥ 1",
      });
    if (s.concurrentOp !== undefined) {
      const need = CONCURRENT_VMA_KINDS[s.concurrentOp.kind as keyof typeof CONCURRENT_VMA_KINDS];
      const target = need === undefined ? undefined : s.vmas[opVmaIndex(s.concurrentOp, s.vmas)];
      if (
        need !== undefined &&
        target !== undefined &&
        !(need.kinds as readonly string[]).includes(target.kind)
      ) {
        ctx.addIssue({
          code: "custom",
          path: ["concurrentOp", "vma"],
          input: s.concurrentOp.vma,
          message: need.message(target.kind),
        });
      }
      if (s.concurrentOp.kind === "kvm-fault" && !s.kvm)
        ctx.addIssue({
          code: "custom",
          path: ["concurrentOp", "kind"],
          input: s.concurrentOp.kind,
          message: "kvm-fault is a vCPU of a KVM guest: set kvm: true",
        });
      if (
        s.concurrentOp.kind === "khugepaged" &&
        target !== undefined &&
        target.kind !== "shmem" &&
        target.dirty > 0
      )
        ctx.addIssue({
          code: "custom",
          path: ["concurrentOp", "vma"],
          input: s.concurrentOp.vma,
          message:
            "khugepaged collapses only files nobody has open for writing (CONFIG_READ_ONLY_THP_FOR_FS): give a file VMA with dirty 0, or a shmem VMA",
        });
      const threadOfMm = NOT_BESIDE_EXIT[s.concurrentOp.kind as keyof typeof NOT_BESIDE_EXIT];
      if (threadOfMm !== undefined && s.op.kind === "exit")
        ctx.addIssue({
          code: "custom",
          path: ["concurrentOp", "kind"],
          input: s.concurrentOp.kind,
          message: threadOfMm,
        });
      if (
        s.concurrentOp.kind === "writeback" ||
        s.concurrentOp.kind === "revoke" ||
        s.concurrentOp.kind === "numa" ||
        s.concurrentOp.kind === "migrate" ||
        s.concurrentOp.kind === "kvm-fault" ||
        s.concurrentOp.kind === "khugepaged"
      )
        checkRange(s.concurrentOp, s.vmas, "concurrentOp", ctx);
      else if (s.concurrentOp.kind === "swapoff") {
        if (s.swap === 0 || (s.swap === undefined && !s.vmas.some((v) => v.swap > 0)))
          ctx.addIssue({
            code: "custom",
            path: ["concurrentOp", "kind"],
            input: s.concurrentOp.kind,
            message: "swapoff needs a swap device: give swap, or a VMA that swaps pages out",
          });
      } else if (s.op.kind === "exit") {
        ctx.addIssue({
          code: "custom",
          path: ["concurrentOp"],
          message: "a concurrent operation needs op.kind munmap or dontneed (exit takes the whole mm)",
        });
      } else checkRange(s.concurrentOp, s.vmas, "concurrentOp", ctx);
      if (s.cpus < 1) {
        ctx.addIssue({
          code: "custom",
          path: ["cpus"],
          input: s.cpus,
          message: "a concurrent operation runs on a second CPU: expected cpus ≥ 1",
        });
      }
    }
    s.vmas.forEach((v, i) => {
      if (v.shared < 1 && !s.fork)
        ctx.addIssue({
          code: "custom",
          path: ["vmas", i, "shared"],
          input: v.shared,
          message: "a fraction shared with a forked child needs fork: true; use 1 or set fork",
        });
    });
    if (s.target === "child" && !s.fork) {
      ctx.addIssue({
        code: "custom",
        path: ["target"],
        input: s.target,
        message: 'target "child" needs fork: true',
      });
    }
    const names = new Set<string>();
    s.vmas.forEach((v, i) => {
      if (v.name === undefined) return;
      if (names.has(v.name)) {
        ctx.addIssue({
          code: "custom",
          path: ["vmas", i, "name"],
          input: v.name,
          message: `expected a unique VMA name, "${v.name}" is used twice`,
        });
      }
      names.add(v.name);
    });
    // Every page the model builds: a dirty page of a private file mapping is two (the page-cache
    // folio and its COW copy), so dirty file-private VMAs count twice what they map.
    const total = s.vmas.reduce((a, v) => a + v.size * (1 + (v.kind === "file-private" ? v.dirty : 0)), 0);
    if (total > MAX_VMA_BYTES) {
      ctx.addIssue({
        code: "custom",
        path: ["vmas"],
        message:
          `expected at most ${formatSize(MAX_VMA_BYTES)} of pages in all (a dirty file-private page counts ` +
          `twice: page cache + COW copy), got ${formatSize(Math.ceil(total / 4096) * 4096)}`,
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

/** Deepest nesting a scenario file may have (a real one has 4: scenario → vmas → vma → folio mix). */
const MAX_NESTING = 32;

/** Nesting depth of parsed data, counted without recursion and stopping past `limit`. */
function nestingDepth(data: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[data, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (d + 1 > deepest) deepest = d + 1;
    if (deepest > limit) return deepest;
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return deepest;
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

/**
 * The YAML library (`yaml`), given as a function that returns it: parsing a JSON scenario never calls
 * it, so a caller can load the library only for YAML text (the CLI does; it is a good part of its
 * start-up otherwise).
 */
export type YamlLoader = () => Pick<typeof Yaml, "parseDocument" | "YAMLParseError">;

/** Parses JSON or YAML text (chosen by file extension, else by content) into an object, unvalidated. */
export function parseScenarioData(text: string, source: string, yaml: YamlLoader): Record<string, unknown> {
  if (text.trim() === "") throw new ScenarioError(`${source} is empty: expected a JSON or YAML scenario`, []);
  let data: unknown;
  const isJson = source.endsWith(".json") || /^\s*[[{]/.test(text);
  const lib = isJson ? null : yaml();
  try {
    if (lib === null) data = JSON.parse(text);
    else {
      const doc = lib.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
      if (doc.errors.length > 0) throw doc.errors[0];
      // A tag the YAML core schema does not know (!foo, !!js/function) is refused, not dropped.
      const tag = doc.warnings.find((w) => w.code === "TAG_RESOLVE_FAILED");
      if (tag !== undefined)
        throw new ScenarioError(
          `${source}: ${tag.message.split("\n")[0].replace(/:$/, "")}; scenario files use plain YAML`,
          [],
        );
      data = doc.toJS();
    }
  } catch (err) {
    if (err instanceof ScenarioError) throw err;
    const what = isJson ? "JSON" : "YAML";
    const detail =
      (lib !== null && err instanceof lib.YAMLParseError) || err instanceof SyntaxError
        ? err.message.split("\n")[0]
        : String(err);
    throw new ScenarioError(`${source} is not valid ${what}: ${detail}`, []);
  }
  if (nestingDepth(data, MAX_NESTING) > MAX_NESTING) {
    throw new ScenarioError(
      `${source}: nested more than ${MAX_NESTING} levels deep; a scenario needs at most 4`,
      [],
    );
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ScenarioError(`${source}: expected an object with "vmas" and "op", got ${givenText(data)}`, []);
  }
  return data as Record<string, unknown>;
}

/** Parses JSON or YAML text and validates it. */
export function parseScenarioText(text: string, source: string, yaml: YamlLoader): Scenario {
  return validateScenario(parseScenarioData(text, source, yaml), source);
}

/** The JSON Schema of the scenario format (input side), as shipped in scenario.schema.json. */
export function scenarioJsonSchema(): unknown {
  return z.toJSONSchema(ScenarioSchema, { io: "input", unrepresentable: "any" });
}
