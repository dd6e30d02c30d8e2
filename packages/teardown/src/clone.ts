// Models: nothing in the kernel; one built workload run under several designs. Building a 1 GiB
// process image (faults, fork, swap-out, CPU accesses) costs as much as tearing it down, and a
// comparison runs the same image once per design and arch: `sharesBuild` tells when two specs build
// the same machine state, `cloneBuilt` gives each run an exact copy of one build — typed-array copies
// of physical memory, page tables, swap, TLBs and checker (Machine.copyFrom), the VMAs and i_mmap, the
// random generator's state — so a run on the copy reports what a run on a fresh build of its spec would.
// Omits: copies taken in the middle of an operation (refused: RCU callbacks or a swapoff window open).
import { genericArch } from "@mmgather/arch-generic";
import type { ArchTlb } from "@mmgather/mmu-gather";
import { TeardownError } from "./errors.js";
import type { Machine } from "./machine.js";
import type { Mm } from "./mm.js";
import { resolveVariant } from "./ops.js";
import { sameGeometry } from "./page-tables.js";
import { type BuiltScenario, rmapPolicyOf, type ScenarioSpec } from "./scenario.js";
import type { Vma } from "./vma.js";

/**
 * The fields of a spec the build reads besides `arch` and `variant` (see `buildScenario`): the
 * operation's range places gup_fast walks, the presence of a concurrent one the CPUs they and lazy CPUs
 * may use. `costProfile`, `walk`, `alloc`, `numaScan`, `events` and `progress` only shape the run.
 */
const BUILD_FIELDS = [
  "memory",
  "swap",
  "seed",
  "vmas",
  "fork",
  "target",
  "exitedChildren",
  "cpus",
  "lazyCpus",
  "devices",
  "kvm",
  "gupFast",
  "tlbEntries",
  "touch",
  "checker",
  "pcpPolicy",
  "pcpFreeHighBatch",
  "op",
  "concurrentOp",
] as const;

/** Plain data equal field by field (an undefined field is an absent one); anything else by identity. */
function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const y = b as unknown[];
    return a.length === y.length && a.every((x, i) => sameData(x, y[i]));
  }
  if (Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype)
    return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
  for (const k of keys) if (!sameData(x[k], y[k])) return false;
  return true;
}

/**
 * The build runs teardown operations of its own — the forked child's MADV_DONTNEED of the part it no
 * longer shares (`sharedFraction`), the exited children's exit_mmap — with the spec's variant, walk and
 * arch.
 */
function buildRunsOps(s: ScenarioSpec): boolean {
  return (
    (s.exitedChildren ?? 0) !== 0 ||
    (s.fork === true && Array.isArray(s.vmas) && s.vmas.some((v) => (v.sharedFraction ?? 1) !== 1))
  );
}

/**
 * True when `b` builds exactly the machine state `a` does, so a run of `b` may start from a copy of
 * `a`'s build (`cloneBuilt`). Every field the build reads must be equal; the two must run on the same
 * rmap rules (`rmapPolicyOf`: `spec.rmapPolicy`, else the design's kernel); and, when the build runs
 * operations of its own (fork with `sharedFraction` < 1, `exitedChildren`), the same variant, walk and
 * arch. Otherwise the arches may differ if nothing of them reaches the build: the same page-table
 * geometry, the same PTE-aware `setPtes` (arm64 contpte folds blocks at fault and fork), the same
 * contiguous-block size (CPU accesses cache whole blocks) and the same secondary-TLB support (devices).
 * False whenever in doubt: the caller then builds `b` itself.
 */
export function sharesBuild(a: ScenarioSpec, b: ScenarioSpec): boolean {
  if (a === b) return true;
  for (const k of BUILD_FIELDS) if (!sameData(a[k], b[k])) return false;
  let va: ReturnType<typeof resolveVariant>;
  let vb: ReturnType<typeof resolveVariant>;
  try {
    va = resolveVariant(a.variant);
    vb = resolveVariant(b.variant);
    if (rmapPolicyOf(a) !== rmapPolicyOf(b)) return false;
  } catch {
    return false;
  }
  const aa = a.arch ?? genericArch;
  const ab = b.arch ?? genericArch;
  if (buildRunsOps(a)) return va === vb && a.walk === b.walk && aa === ab;
  if (aa === ab) return true;
  return (
    typeof aa === "object" &&
    typeof ab === "object" &&
    aa !== null &&
    ab !== null &&
    sameGeometry(aa.geometry, ab.geometry) &&
    aa.setPtes === ab.setPtes &&
    (aa.contPte?.contPtes ?? 1) === (ab.contPte?.contPtes ?? 1) &&
    aa.invalidatesSecondaryTlbs === ab.invalidatesSecondaryTlbs
  );
}

/**
 * An exact copy of the built scenario `b`, for running `spec` (default: `b.spec`; it must share `b`'s
 * build, BAD_SPEC otherwise) — taken before `b`'s operation runs. The copy has its own machine, on
 * `spec`'s arch: every mm, VMA and table, physical memory, swap, TLBs, checker and the random
 * generator's state, so `runBuilt(copy, spec)` reports what `runScenario(spec)` would, and running it
 * changes neither `b` nor any other copy. With `into`, an earlier copy of the same build on the same
 * arch (whatever ran on it since), the state is copied into its machine's arrays instead of new ones:
 * `into` is used up, the result replaces it.
 */
export function cloneBuilt(
  b: BuiltScenario,
  spec: ScenarioSpec = b.spec,
  into?: BuiltScenario,
): BuiltScenario {
  if (spec !== b.spec && !sharesBuild(b.spec, spec))
    throw new TeardownError(
      "BAD_SPEC",
      "clone",
      "cloneBuilt",
      "spec does not build the same state as the built scenario (sharesBuild is false)",
    );
  const arch: ArchTlb = spec.arch ?? genericArch;
  let machine: Machine;
  let vmas: Map<Vma, Vma>;
  if (into !== undefined) {
    if (into.machine.arch !== arch)
      throw new TeardownError(
        "BAD_SPEC",
        "clone",
        "cloneBuilt",
        "into's machine runs another arch than spec's",
      );
    machine = into.machine;
    vmas = machine.copyFrom(b.machine);
  } else ({ machine, vmas } = b.machine.clone(arch));
  const mmOf = (m: Mm): Mm => machine.mms[b.machine.mms.indexOf(m)];
  return {
    machine,
    parent: mmOf(b.parent),
    child: b.child === null ? null : mmOf(b.child),
    target: mmOf(b.target),
    vmas: b.vmas.map((v) => vmas.get(v) ?? { ...v }),
    rng: b.rng.clone(),
    spec,
  };
}
