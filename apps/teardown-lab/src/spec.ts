// Maps a validated Scenario (the file format) onto @mmgather/teardown's ScenarioSpec for one
// (variant, arch), sizes the model's physical memory when the scenario omits it, and estimates the
// bytes a run will hold. Browser-safe: no node: imports.
import { arm64Arch } from "@mmgather/arch-arm64";
import { genericArch } from "@mmgather/arch-generic";
import { s390Arch } from "@mmgather/arch-s390";
import { x86Arch } from "@mmgather/arch-x86";
import { type ArchTlb, encodedNrPagesFor } from "@mmgather/mmu-gather";
import type { ConcurrentOpSpec, FolioPolicy, OpSpec, ScenarioSpec, VmaSpec } from "@mmgather/teardown";
import type { Scenario } from "./scenario.js";
import { FOLIO_SIZES, folioOrder, formatSize, parseSize } from "./size.js";

export const VARIANTS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;
export type VariantName = (typeof VARIANTS)[number];
export const ARCHES = ["generic", "s390", "x86", "arm64"] as const;
export type ArchName = (typeof ARCHES)[number];

export const ARCH_TLB: Readonly<Record<ArchName, ArchTlb>> = {
  generic: genericArch,
  s390: s390Arch,
  x86: x86Arch,
  arm64: arm64Arch,
};

/** PMD order of each arch: the folio order a PMD maps (generic 9 = 2 MiB, s390 8 = 1 MiB). */
export function pmdOrder(arch: ArchName): number {
  return ARCH_TLB[arch].geometry.pmdOrder;
}

/** Thrown when a valid scenario cannot run on an arch, or would not fit: the CLI exits 2. */
export class SpecError extends Error {
  readonly code = "BAD_SPEC" as const;
  constructor(message: string) {
    super(message);
    this.name = "SpecError";
  }
}

const MiB = 1024 * 1024;
const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

/**
 * Physical memory given to the model when the scenario has no `memory`:
 *   Σ over VMAs of size × (1 + dirty for file-private VMAs, whose written pages are COW copies)
 *   × 5/4 (page tables, buddy fragmentation around large folios) + 16 MiB, rounded up to 2 MiB.
 */
export function autoMemoryBytes(s: Scenario): number {
  let data = 0;
  for (const v of s.vmas) data += v.size * (1 + (v.kind === "file-private" ? v.dirty : 0));
  return roundUp((data * 5) / 4 + 16 * MiB, 2 * MiB);
}

/** Swap given to the model when the scenario has none but a VMA swaps out: Σ anon sizes × swap + 1 MiB. */
export function autoSwapBytes(s: Scenario): number {
  let need = 0;
  for (const v of s.vmas) {
    if (v.kind !== "anon" || v.swap === 0) continue;
    // Swap slots go to a folio as one naturally aligned run (folio_alloc_swap): count whole largest
    // folios, one more for the fraction's rounding.
    const sizes = typeof v.folio === "number" ? [v.folio] : Object.keys(v.folio).map((k) => parseSize(k)!);
    const largest = Math.max(...sizes);
    need += (Math.ceil((v.size * v.swap) / largest) + 1) * largest;
  }
  // The first cluster holds the header slot, so it never takes a cluster-sized run.
  return need > 0 ? roundUp(need + SWAP_CLUSTER_BYTES + MiB, 4096) : 0;
}

/** SWAPFILE_CLUSTER slots of 4 KiB. */
const SWAP_CLUSTER_BYTES = 512 * 4096;

/**
 * Estimated peak bytes of one run: 32 B per physical page (folio arrays, measured ~28 B), 8 B per
 * mapped PTE and per table page slot (×2 when forked), 2 B per swap slot, plus 64 KiB per CPU TLB.
 * Documented in the README; the CLI compares it with `memoryLimitBytes`.
 */
export function estimateModelBytes(s: Scenario): number {
  const memory = s.memory ?? autoMemoryBytes(s);
  const swap = s.swap ?? autoSwapBytes(s);
  const mapped = s.vmas.reduce((a, v) => a + v.size, 0) / 4096;
  return (memory / 4096) * 32 + mapped * 8 * (s.fork ? 2 : 1) + (swap / 4096) * 2 + s.cpus * 65536;
}

/**
 * The folio sizes the scenario's main VMA can have, smallest first: no order-1 (8K) folios when it is
 * anonymous, and with `arch` none larger than that arch's PMD. The default sweep and the web chart use it.
 */
export function mainVmaFolioSizes(s: Scenario, arch?: ArchName): string[] {
  const anon = s.vmas[0]?.kind === "anon";
  const max = arch === undefined ? Number.POSITIVE_INFINITY : pmdOrder(arch);
  return FOLIO_SIZES.filter((f) => {
    const order = folioOrder(parseSize(f)!)!;
    return order <= max && !(anon && order === 1);
  });
}

/** Folio sizes an anonymous VMA can have on an arch whose PMD order is `max`: order 0 and 2..max. */
export function anonFolioSizes(max: number): string[] {
  const out = [formatSize(4096)];
  for (let o = 2; o <= max; o++) out.push(formatSize(4096 << o));
  return out;
}

function folioPolicy(v: Scenario["vmas"][number], arch: ArchName, at: string): FolioPolicy {
  const max = pmdOrder(arch);
  const check = (bytes: number): number => {
    const order = folioOrder(bytes)!;
    if (order === 1 && v.kind === "anon") {
      throw new SpecError(
        `${at}.folio: anonymous folios of ${formatSize(bytes)} don't exist (the kernel's anon THP orders skip ` +
          `order 1); use ${anonFolioSizes(max).join(", ")}`,
      );
    }
    if (order > max) {
      throw new SpecError(
        `${at}.folio: ${formatSize(bytes)} folios don't exist on ${arch}: its PMD maps ${formatSize(4096 << max)} ` +
          `(PMD order ${max}) and no folio is larger than a PMD; use at most ${formatSize(4096 << max)}`,
      );
    }
    return order;
  };
  if (typeof v.folio === "number") return { order: check(v.folio) };
  return {
    mix: Object.entries(v.folio).map(([k, weight]) => ({ order: check(parseSize(k)!), weight })),
  };
}

/** Notes about how a scenario maps onto an arch (e.g. --pmd on folios smaller than a PMD). */
export function archNotes(s: Scenario, arch: ArchName): string[] {
  const notes: string[] = [];
  const pmdBytes = 4096 << pmdOrder(arch);
  s.vmas.forEach((v, i) => {
    // The fault path maps the largest allowed order that fits the VMA (thp_vma_suitable_order); VMAs
    // start PMD-aligned here, so only a size that is not a multiple of the folio makes smaller ones.
    const largest =
      typeof v.folio === "number" ? v.folio : Math.max(...Object.keys(v.folio).map((k) => parseSize(k)!));
    if (largest > 4096 && v.size % largest !== 0)
      notes.push(
        `vmas[${i}]: its size ${formatSize(v.size)} is not a multiple of its ${formatSize(largest)} folios; ` +
          `the fault path maps the largest folio that fits (thp_vma_suitable_order), so ${
            v.size < largest ? "every folio is smaller" : "the tail is mapped by smaller folios"
          }`,
      );
    if (!v.pmd) return;
    const sizes = typeof v.folio === "number" ? [v.folio] : Object.keys(v.folio).map((k) => parseSize(k)!);
    if (!sizes.includes(pmdBytes)) {
      notes.push(
        `vmas[${i}]: pmd is set but no folio is ${formatSize(pmdBytes)} (the PMD size on ${arch}); ` +
          `its ${sizes.map(formatSize).join("/")} folios are PTE-mapped there`,
      );
    }
  });
  return notes;
}

/** Index of an operation's VMA, given by index or by name (-1 when no VMA has that name). */
export function vmaIndex(s: Scenario, vma: number | string): number {
  return typeof vma === "number" ? vma : s.vmas.findIndex((v) => v.name === vma);
}

function opSpec(s: Scenario, op: Scenario["op"]): OpSpec {
  if (op.kind === "exit") return { kind: "exit" };
  return {
    kind: op.kind === "dontneed" ? "madvise" : op.kind,
    vma: vmaIndex(s, op.vma),
    offset: op.offset,
    length: op.length,
  };
}

function concurrentOpSpec(s: Scenario, op: NonNullable<Scenario["concurrentOp"]>): ConcurrentOpSpec {
  return {
    kind: op.kind === "dontneed" ? "madvise" : op.kind,
    vma: vmaIndex(s, op.vma),
    offset: op.offset,
    length: op.length,
  };
}

/** The teardown spec of a scenario for one variant on one arch. */
export function toScenarioSpec(s: Scenario, variant: VariantName, arch: ArchName): ScenarioSpec {
  const vmas: VmaSpec[] = s.vmas.map((v, i) => ({
    kind: v.kind,
    size: v.size,
    folio: folioPolicy(v, arch, `vmas[${i}]`),
    pmdMapped: v.pmd,
    dirtyFraction: v.dirty,
    swapFraction: v.swap,
    keepInSwapCache: v.keepInSwapCache,
    mlock: v.mlock,
    populate: v.populate,
    readFraction: v.readFraction,
    splitAt: v.splitAt,
    sharedFraction: v.shared,
  }));
  if (s.devices > 0 && !ARCH_TLB[arch].invalidatesSecondaryTlbs) {
    throw new SpecError(
      `devices: ${arch} has no shared-virtual-addressing IOMMU (its TLB flush never invalidates secondary TLBs)`,
    );
  }
  const swap = s.swap ?? autoSwapBytes(s);
  if (swap === 0 && s.vmas.some((v) => v.swap > 0)) {
    throw new SpecError("swap: a VMA swaps pages out but swap is 0; omit swap to size it automatically");
  }
  return {
    memory: s.memory ?? autoMemoryBytes(s),
    swap,
    arch: ARCH_TLB[arch],
    // The nr-pages design follows the scenario's kernel (v6.18 rules unless `kernel: "6.9"`).
    variant: variant === "encoded-nr-pages" ? encodedNrPagesFor(s.kernel) : variant,
    seed: s.seed,
    vmas,
    fork: s.fork,
    target: s.target,
    exitedChildren: s.exitedChildren,
    cpus: s.cpus,
    lazyCpus: s.lazyCpus,
    devices: s.devices,
    kvm: s.kvm ? true : undefined,
    gupFast: s.gupFast,
    tlbEntries: s.tlbEntries,
    touch: s.touch,
    op: opSpec(s, s.op),
    concurrentOp: s.concurrentOp === undefined ? undefined : concurrentOpSpec(s, s.concurrentOp),
  };
}
