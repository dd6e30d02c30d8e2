// Models: the constants and flag names of include/linux/mm_types.h, mm/internal.h, include/linux/swap.h,
// include/linux/pagevec.h (6.5) / folio_batch.h (7.x) and include/linux/mmzone.h that teardown touches.
// Omits: every page flag and node statistic that the teardown path never reads or writes.

/** Highest buddy order (`MAX_PAGE_ORDER`, formerly `MAX_ORDER`): buddy blocks of 1..1024 pages. */
export const MAX_PAGE_ORDER = 10;
/** Added to `_nr_pages_mapped` once per entire (PMD) mapping (`ENTIRELY_MAPPED` in 7.x). */
export const COMPOUND_MAPPED = 0x800000;
/** Mask of the "pages mapped by PTE" part of `_nr_pages_mapped`. */
export const FOLIO_PAGES_MAPPED = COMPOUND_MAPPED - 1;
/** 6.5 `release_pages` drops the lruvec lock after this many folios processed while holding it. */
export const SWAP_CLUSTER_MAX = 32;
/** 6.5 `struct folio_batch` / pagevec capacity (per-CPU LRU-add batch). */
export const PAGEVEC_SIZE = 15;
/** 7.x `struct folio_batch` capacity (`folios_put_refs`). */
export const FOLIO_BATCH_SIZE = 31;

/**
 * Page flags (single-bit masks). `partiallyMapped` models 7.x's `PG_partially_mapped`;
 * `deferredQueued` models "`folio->_deferred_list` is not empty" (queued for deferred split).
 */
export const PG = {
  locked: 1 << 0,
  referenced: 1 << 1,
  dirty: 1 << 2,
  lru: 1 << 3,
  active: 1 << 4,
  writeback: 1 << 5,
  swapcache: 1 << 6,
  swapbacked: 1 << 7,
  mlocked: 1 << 8,
  anon: 1 << 9,
  partiallyMapped: 1 << 10,
  deferredQueued: 1 << 11,
} as const;

/** Name of a page flag in {@link PG}. */
export type PageFlagName = keyof typeof PG;

/** Mask of every public page flag. */
export const PG_ALL_MASK = 0xfff;

/**
 * Flags whose state is owned by this package's primitives (LRU membership, deferred-split queue,
 * anon/swapbacked identity): `folioSet`/`folioClear` refuse them so counts and statistics stay exact.
 */
export const PG_MANAGED_MASK = PG.lru | PG.anon | PG.swapbacked | PG.partiallyMapped | PG.deferredQueued;

/** Node / lruvec statistic items (small integer ids). */
export const NodeStat = {
  NR_ANON_MAPPED: 0,
  NR_FILE_MAPPED: 1,
  NR_ANON_THPS: 2,
  NR_FILE_PMDMAPPED: 3,
  NR_SHMEM_PMDMAPPED: 4,
  /** Page-cache pages (`__filemap_add_folio` / `filemap_unaccount_folio`). */
  NR_FILE_PAGES: 5,
  /** Page-cache pages of swap-backed (shmem) address spaces. */
  NR_SHMEM: 6,
} as const;

/** A node statistic id. */
export type NodeStatItem = (typeof NodeStat)[keyof typeof NodeStat];

/** Number of statistic items kept per lruvec. */
export const NR_STAT_ITEMS = 7;
