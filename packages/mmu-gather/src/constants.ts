// Models: the batch-size macros of include/asm-generic/tlb.h and mm/mmu_gather.c (v6.5, the 2023 series, 7.x).
// Omits: CONFIG_MMU_GATHER_PAGE_SIZE; page-poisoning page-count chunking of 7.x.

import type { VariantName } from "./types.js";

/** On-stack entries behind `tlb->local` (`MMU_GATHER_BUNDLE`). */
export const MMU_GATHER_BUNDLE = 8;
/** `sizeof(struct mmu_gather_batch)` header: next (8) + nr (4) + max (4). */
export const GATHER_BATCH_HEADER_BYTES = 16;
/** The soft-lockup bound `MAX_GATHER_BATCH_COUNT` divides: 10000 entries. */
export const MAX_GATHER_ENTRIES = 10000;
/** Entries handed to one `free_pages_and_swap_cache` call (`MAX_NR_FOLIOS_PER_FREE`, 512U before). */
export const MAX_NR_FOLIOS_PER_FREE = 512;
/** `struct mmu_table_batch` header with RCU table free: rcu_head (16) + nr (4) + pad (4). */
export const TABLE_BATCH_HEADER_RCU_BYTES = 24;
/** Header without RCU table free: nr (4) + pad (4). */
export const TABLE_BATCH_HEADER_BYTES = 8;
/** Pointer size on the modelled 64-bit arches. */
export const POINTER_BYTES = 8;
/** `sizeof(struct pfn_range)` of the series (two unsigned longs). */
export const PFN_RANGE_BYTES = 16;

/** v6.5 / 7.x encoded_page: "remove the rmap after the TLB flush" (`ENCODED_PAGE_BIT_DELAY_RMAP`). */
export const ENCODED_PAGE_BIT_DELAY_RMAP = 1;
/** 7.x: the next slot holds `nr << 2` (`ENCODED_PAGE_BIT_NR_PAGES_NEXT`). */
export const ENCODED_PAGE_BIT_NR_PAGES_NEXT = 2;
/** Mask of the flag bits (`ENCODED_PAGE_BITS`). */
export const ENCODED_PAGE_BITS = 3;
/** Bits the flags occupy below the pfn in an encoded slot. */
export const ENCODED_PAGE_SHIFT = 2;
/** Largest pfn (exclusive) an Int32 encoded slot can carry. */
export const MAX_ENCODABLE_PFN = 2 ** 29;

/** `ULONG_MAX` sentinel for the fullmm range `[~0, ~0)`. */
export const TLB_RANGE_ULONG_MAX = Number.MAX_SAFE_INTEGER;

/** `TLB_FLUSH_ALL` (`-1UL`): the end of a flush of the whole address space. */
export const TLB_FLUSH_ALL = TLB_RANGE_ULONG_MAX;

/** Batch capacities of one variant for a given batch-page size. */
export interface BatchGeometry {
  /** Entries in the on-stack `local` batch. */
  readonly bundle: number;
  /** `MAX_GATHER_BATCH`: entries per extra batch page. */
  readonly maxGatherBatch: number;
  /** `MAX_GATHER_BATCH_COUNT`: extra batch pages. */
  readonly maxGatherBatchCount: number;
}

/**
 * Batch capacities derived exactly as the kernel's macros do.
 * @param variant storage design (pointer slots or 16-byte pfn ranges)
 * @param pageShift log2 of the batch page size
 */
export function batchGeometry(variant: VariantName, pageShift: number): BatchGeometry {
  const entryBytes = variant === "contig-range" ? PFN_RANGE_BYTES : POINTER_BYTES;
  const maxGatherBatch = Math.floor(((1 << pageShift) - GATHER_BATCH_HEADER_BYTES) / entryBytes);
  return {
    bundle: MMU_GATHER_BUNDLE,
    maxGatherBatch,
    maxGatherBatchCount: Math.floor(MAX_GATHER_ENTRIES / maxGatherBatch),
  };
}

/**
 * `MAX_TABLE_BATCH`: page-table pointers per table batch page (509 with RCU, 511 without, on 4 KiB).
 */
export function maxTableBatch(pageShift: number, rcu: boolean): number {
  const header = rcu ? TABLE_BATCH_HEADER_RCU_BYTES : TABLE_BATCH_HEADER_BYTES;
  return Math.floor(((1 << pageShift) - header) / POINTER_BYTES);
}

/**
 * Most entries one gather holds before `__tlb_remove_*` reports full (count limit only).
 * encoded-page / contig-range: bundle + count·max; encoded-nr-pages keeps one slot spare per batch.
 */
export function maxQueuedEntries(variant: VariantName, pageShift: number): number {
  const g = batchGeometry(variant, pageShift);
  if (variant === "encoded-nr-pages") return g.bundle - 1 + g.maxGatherBatchCount * (g.maxGatherBatch - 1);
  return g.bundle + g.maxGatherBatchCount * g.maxGatherBatch;
}
