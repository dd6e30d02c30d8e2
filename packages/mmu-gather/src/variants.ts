// Models: the flush pipeline of mm/mmu_gather.c (tlb_flush_mmu, tlb_finish_mmu, tlb_flush_rmaps,
// tlb_delay_rmap / tlb_batch_rmap, __pte_free_tlb → tlb_remove_table) as composable steps, and the
// three storage designs: v6.5 encoded pages, the 2023 contig-range series (v2), encoded nr_pages
// (v6.18 rules, or v6.9's).
// Omits: nothing of the step order; storage details live in storage.ts.

import { GatherError } from "./errors.js";
import type { GatherSteps, GatherVariant, VariantName, VariantOverrides, VariantPolicy } from "./types.js";

/** Kernel `tlb_flush_mmu`: TLB flush, then the table batch, then the page batches. */
export function defaultFlushMmu(ops: Parameters<GatherSteps["flushMmu"]>[0]): void {
  ops.tlbFlushMmuTlbonly();
  ops.tlbTableFlush();
  ops.tlbBatchPagesFlush();
}

/** Kernel `tlb_finish_mmu`: nested rule, full flush, batch list free, dec pending. */
export function defaultFinishMmu(ops: Parameters<GatherSteps["finishMmu"]>[0], flushMmu: () => void): void {
  if (ops.mmTlbFlushNested()) ops.forceFlushAll();
  flushMmu();
  ops.tlbBatchListFree();
  ops.decTlbFlushPending();
}

/** Steps shared by every kernel variant; the variants below only differ in `tlbDelayRmap`. */
export const defaultSteps: GatherSteps = Object.freeze({
  flushMmu: defaultFlushMmu,
  finishMmu: defaultFinishMmu,
  tlbDelayRmap(ops, archAllows) {
    if (!archAllows) return false;
    ops.setDelayedRmap();
    return true;
  },
  flushRmaps(ops) {
    ops.tlbFlushRmapsStorage();
  },
  removeTable(ops, tablePfn) {
    ops.tlbRemoveTable(tablePfn);
  },
} satisfies GatherSteps);

/**
 * mm-unstable of August 2023 (the 2023 series' base, around v6.5): one encoded page pointer per page;
 * delayed rmap only for dirty file pages.
 */
export const encodedPage: GatherVariant = Object.freeze({
  name: "encoded-page",
  storage: "encoded-page",
  policy: Object.freeze({
    deferAllRmaps: false,
    walkBatchesFolioPtes: false,
    immediateRmap: "pageRemoveRmap",
    lruAddDrainOnFree: true,
    limitBatchesWhileDelayed: true,
    walkBatchesSwapPtes: false,
    capBatchCount: true,
    condReschedPerChunk: true,
    kernel: "mm-unstable-2023-08",
  }),
  steps: defaultSteps,
} satisfies GatherVariant);

/**
 * The 2023 series v2: pfn ranges; every rmap deferred to `tlb_flush_rmaps` (`tlb_batch_rmap`); the
 * `delayed_rmap` bit is gone, so `tlbDelayRmap` only tells the walk to force a TLB flush.
 */
export const contigRange: GatherVariant = Object.freeze({
  name: "contig-range",
  storage: "contig-range",
  policy: Object.freeze({
    deferAllRmaps: true,
    walkBatchesFolioPtes: false,
    immediateRmap: "pageRemoveRmap",
    lruAddDrainOnFree: true,
    limitBatchesWhileDelayed: false,
    walkBatchesSwapPtes: false,
    capBatchCount: true,
    condReschedPerChunk: true,
    kernel: "mm-unstable-2023-08",
  }),
  steps: Object.freeze({
    ...defaultSteps,
    tlbDelayRmap(_ops, archAllows) {
      return archAllows;
    },
  } satisfies GatherSteps),
} satisfies GatherVariant);

/**
 * The design merged in 6.9, with the rules of a v6.18 kernel: encoded pages plus an nr_pages slot;
 * folio_pte_batch and swap_pte_batch; folios_put_refs; no lru_add_drain in free_pages_and_swap_cache.
 * The machine's `rmapPolicy` (folio layer) follows `policy.kernel`.
 */
export const encodedNrPages: GatherVariant = Object.freeze({
  name: "encoded-nr-pages",
  storage: "encoded-nr-pages",
  policy: Object.freeze({
    deferAllRmaps: false,
    walkBatchesFolioPtes: true,
    immediateRmap: "folioRemoveRmapPtes",
    lruAddDrainOnFree: false,
    limitBatchesWhileDelayed: true,
    walkBatchesSwapPtes: true,
    capBatchCount: true,
    condReschedPerChunk: true,
    kernel: "6.18",
  }),
  steps: defaultSteps,
} satisfies GatherVariant);

/**
 * The nr-pages design as v6.9 (released 12 May 2024) shipped it — what differs from v6.18:
 * `free_pages_and_swap_cache` still starts with `lru_add_drain()` (mm/swap_state.c); swap PTEs are
 * zapped one at a time (`swap_pte_batch` / `free_swap_and_cache_nr` arrived in v6.10); and
 * `__folio_remove_rmap` calls `deferred_split_folio` for every PTE-level unmap of a large anon folio
 * (the partially-mapped gate came in v6.10, PG_partially_mapped in v6.12) — see the folio layer's
 * `rmapPolicy: "v6.9"`. Same storage, walk and flush pipeline otherwise.
 */
export const encodedNrPagesV69: GatherVariant = defineVariant(encodedNrPages, {
  name: "encoded-nr-pages@6.9",
  policy: { lruAddDrainOnFree: true, walkBatchesSwapPtes: false, kernel: "6.9" },
});

/** Kernel trees the nr-pages design can follow. */
export const NR_PAGES_KERNELS = ["6.9", "6.18"] as const;

/** The nr-pages design under the rules of `kernel` (default "6.18"). */
export function encodedNrPagesFor(kernel: (typeof NR_PAGES_KERNELS)[number] = "6.18"): GatherVariant {
  if (kernel === "6.18") return encodedNrPages;
  if (kernel === "6.9") return encodedNrPagesV69;
  throw new GatherError(
    "BAD_VARIANT",
    "variants",
    "encodedNrPagesFor",
    `unknown kernel "${String(kernel)}"; expected one of ${NR_PAGES_KERNELS.join(", ")}`,
  );
}

/** All kernel variants by name. */
export const variants: Readonly<Record<VariantName, GatherVariant>> = Object.freeze({
  "encoded-page": encodedPage,
  "contig-range": contigRange,
  "encoded-nr-pages": encodedNrPages,
});

/** Look a variant up by name; throws `GatherError('BAD_VARIANT')` for an unknown name. */
export function getVariant(name: VariantName): GatherVariant {
  // Own properties only: "toString" or "constructor" is no variant.
  const v = Object.hasOwn(variants, name) ? (variants as Record<string, GatherVariant>)[name] : undefined;
  if (v === undefined)
    throw new GatherError("BAD_VARIANT", "variants", "getVariant", `unknown variant "${name}"`);
  return v;
}

/**
 * Derive a variant from `base`, replacing policies and steps. This is how a deliberately broken
 * variant is built, e.g. `defineVariant(encodedPage, { name: "free-first", steps: { flushMmu } })`.
 */
export function defineVariant(base: GatherVariant, overrides: VariantOverrides): GatherVariant {
  const policy: VariantPolicy = Object.freeze({ ...base.policy, ...overrides.policy });
  const steps: GatherSteps = Object.freeze({ ...base.steps, ...overrides.steps });
  for (const k of ["flushMmu", "finishMmu", "tlbDelayRmap", "flushRmaps", "removeTable"] as const)
    if (typeof steps[k] !== "function")
      throw new GatherError("BAD_VARIANT", "variants", "defineVariant", `step ${k} must be a function`);
  return Object.freeze({ name: overrides.name ?? base.name, storage: base.storage, policy, steps });
}
