// Models: struct page / struct folio (include/linux/mm_types.h) as a struct of arrays indexed by pfn —
// refcount, per-page `_mapcount` (stored -1 for "unmapped"), `_entire_mapcount`, `_nr_pages_mapped`
// with COMPOUND_MAPPED, `_large_mapcount`, flags, mapping + index, swap entry, memcg — plus the per-node
// and per-lruvec state the other model files keep (free lists, pcp lists, LRU, stats, split queues),
// and the pfn / head / range checks every checked entry point makes.
// Omits: `_pincount`, mm-id "maybe shared" tracking (7.x), CONFIG_NO_PAGE_MAPCOUNT, hugetlb,
// zone-device and the huge zero folio.
//
// 24 bytes per page frame. Tail pages and free blocks reuse the head fields, as the kernel's unions do;
// each reuse has its own name here (the same typed array under a second name), so the code reads as
// the kernel's field names: `largeMapcount`, `entireMapcount` and `nrPagesMapped` at page[1] of a large
// folio, `freeNext` / `freePrev` at the first page of a free buddy block.

import { FOLIO_BATCH_SIZE, NR_STAT_ITEMS, PAGEVEC_SIZE, PG_ALL_MASK } from "./constants.js";
import { FolioCounters, pcpZoneSizes } from "./counters.js";
import { fail } from "./errors.js";
import { F_FREE, F_HEAD, ORDER_MASK, ORDER_SHIFT } from "./layout.js";

const MODULE = "mm-types";

/** PAGE_ALLOC_COSTLY_ORDER. */
export const COSTLY_ORDER = 3;
/** Movable pcp lists modelled per node: orders 0..COSTLY_ORDER, then pageblock_order (`order_to_pindex` order). */
export const PCP_LISTS = COSTLY_ORDER + 2;

/** Free-side rules of the per-CPU page lists, by the kernel release that introduced them. */
export type PcpPolicy = "v6.5" | "v6.7";

/**
 * Rules of the 7.x-style rmap (`folio_remove_rmap_*`) for queueing a large anon folio on the
 * deferred-split queue: "v6.18" (v6.12+: only a partially mapped folio, once, marked
 * PG_partially_mapped) or "v6.9" (v6.9: every PTE-level unmap of a large anon folio that unmapped a
 * page, fully unmapped or not, calls `deferred_split_folio`, which queues it unless already queued).
 */
export type RmapPolicy = "v6.9" | "v6.18";

/** Called with (head pfn, order) whenever a folio is returned to the allocator. */
export type FreeObserver = (head: number, order: number) => void;

/**
 * Called with the head pfn whenever a folio is added to a deferred-split queue (`list_add_tail` on
 * `_deferred_list`), after the rmap removal that queued it has updated every mapcount.
 */
export type DeferredSplitObserver = (head: number) => void;

/** One page-cache address_space. */
export interface AddressSpace {
  readonly swapBacked: boolean;
  /** index of the folio's first page → head pfn (one entry per folio, natural alignment). */
  readonly folios: Map<number, number>;
}

/** The caller-owned context of the series' refactored `release_pages` (`folios_put_refs_ctx`). */
export class PutRefsCtx {
  active = false;
  /** Locked lruvec id, -1 = none held. */
  lruvec = -1;
  lockBatch = 0;
  toFree: Int32Array = new Int32Array(64);
  nrToFree = 0;
}

/** The validated shape of a machine's physical memory. */
export interface FolioGeometry {
  readonly nrPages: number;
  readonly nrNodes: number;
  readonly nrMemcgs: number;
  readonly pmdOrder: number;
  /** `PAGE_SHIFT` of the page frames (12: 4 KiB). */
  readonly pageShift: number;
  /** Highest buddy order (`MAX_PAGE_ORDER`), at least `pmdOrder`. */
  readonly maxOrder: number;
  readonly pcpPolicy: PcpPolicy;
  readonly pcpFreeHighBatch: boolean;
  readonly rmapPolicy: RmapPolicy;
}

/**
 * Every piece of mutable state of the folio layer. The model files take it as their first argument;
 * `PhysMem` owns one and is the checked public face of it.
 */
export class FolioState {
  readonly nrPages: number;
  readonly nrNodes: number;
  readonly nrMemcgs: number;
  readonly pmdOrder: number;
  /** `PAGE_SHIFT` of the page frames. */
  readonly pageShift: number;
  /** Highest buddy order (`MAX_PAGE_ORDER`): free lists of orders 0..maxOrder. */
  readonly maxOrder: number;
  /** `pcp->batch` of the modelled zone at this page size (`pcpZoneSizes`). */
  readonly pcpBatch: number;
  /** v6.5 `pcp->high` (v6.7 `high_min`) of the modelled zone at this page size. */
  readonly pcpHighMin: number;
  /** v6.7 `high_max` of the modelled zone at this page size. */
  readonly pcpHighMax: number;
  readonly nrLruvecs: number;
  /** Pages per node span (the last node may be shorter). */
  readonly nodeSpan: number;

  /** Per pfn: public PG bits 0..11, F_HEAD/F_TAIL/F_FREE/F_BUDDY, order (head, buddy head), memcg (head). */
  readonly flags: Uint32Array;
  /** Per pfn: `_mapcount` (-1 = not mapped by any PTE). Free pages: -1. */
  readonly mapcount: Int32Array;
  /** Head: `_refcount`. Other tails than page[1]: 0. */
  readonly refcount: Int32Array;
  /** page[1] of a large folio: `_large_mapcount` (-1 based). The `refcount` array under its union name. */
  readonly largeMapcount: Int32Array;
  /** First page of a free buddy block: free-list next (-1 = end). The `refcount` array under its union name. */
  readonly freeNext: Int32Array;
  /** Head: mapping id (anon_vma or address_space; -1 = none). */
  readonly mapping: Int32Array;
  /** page[1] of a large folio: `_entire_mapcount` (-1 based). The `mapping` array under its union name. */
  readonly entireMapcount: Int32Array;
  /** First page of a free buddy block: free-list prev (-1 = none). The `mapping` array under its union name. */
  readonly freePrev: Int32Array;
  /** Head: `index`. */
  readonly index: Int32Array;
  /**
   * page[1] of a large folio: `_nr_pages_mapped` (PTE-mapped pages + COMPOUND_MAPPED per entire
   * mapping). The `index` array under its union name.
   */
  readonly nrPagesMapped: Int32Array;
  /** Head: `folio->swap` entry (0 = none). Tails: head pfn (`compound_head`). */
  readonly priv: Uint32Array;

  /** Free-list heads per (node, order). */
  readonly freeHead: Int32Array;
  /** Free blocks per (node, order). */
  readonly freeBlocks: Int32Array;
  nrFree: number;

  readonly lruFolios: Int32Array;
  readonly lruPages: Int32Array;
  /** Statistics per lruvec × item. */
  readonly stats: Int32Array;
  readonly splitQueueLen: Int32Array;
  /** The per-CPU LRU-add folio batch (6.5 `cpu_fbatches.lru_add`). */
  readonly lruBatch: Int32Array;
  /**
   * mlock_count of each folio head (VM_LOCKED VMAs mapping it; the kernel keeps it in lru.prev),
   * allocated by the first mlock: null while nothing was ever mlocked.
   */
  mlockCount: Int32Array | null = null;
  /** This CPU's mlock folio batch (`mlock_fbatch`, munlock side). */
  readonly mlockBatch: Int32Array;
  mlockBatchNr = 0;
  lruBatchNr = 0;
  /** Lowest and highest head in the LRU-add batch (a range filter in front of the membership scan). */
  lruBatchMin = 0;
  lruBatchMax = -1;
  /** Per node: pages on the pcp lists (`pcp->count`). */
  readonly pcpCount: Int32Array;
  /** Per node × PCP_LISTS: entries on each movable pcp list. */
  readonly pcpEntries: Int32Array;
  /** Per node: v6.5 `pcp->free_factor`; under the v6.7 policy `pcp->free_count`. */
  readonly pcpFreeFactor: Int32Array;
  /** v6.7 policy: per node `pcp->high` (auto-tuned, in [pcpHighMin, pcpHighMax]). */
  readonly pcpHigh: Int32Array;
  /** v6.7 policy: per node PCPF_PREV_FREE_HIGH_ORDER (1 = the last pcp free was of order 1..3). */
  readonly pcpPrevHighOrder: Uint8Array;
  /** True under `pcpPolicy: "v6.7"`. */
  readonly pcpV67: boolean;
  /** v6.7 policy: PCPF_FREE_HIGH_BATCH. */
  readonly pcpFreeHighBatch: boolean;
  /** True under `rmapPolicy: "v6.9"` (see {@link RmapPolicy}). */
  readonly rmapV69: boolean;
  /** Folios freed by one 7.x folios_put_refs batch. */
  readonly batchFree: Int32Array;

  readonly spaces: AddressSpace[] = [];
  readonly seriesCtx = new PutRefsCtx();
  readonly releaseCtx = new PutRefsCtx();
  freeObserver: FreeObserver | null = null;
  /** See {@link DeferredSplitObserver}. */
  splitObserver: DeferredSplitObserver | null = null;
  /**
   * Folios / pages returned to the allocator since creation: `counters.foliosFreed` / `pagesFreed`
   * without `resetCounters()`. Lets an owner keep lifetime totals without a free observer.
   */
  freedFoliosTotal = 0;
  /** See {@link FolioState.freedFoliosTotal}. */
  freedPagesTotal = 0;

  /** Exact primitive counters (see {@link FolioCounters}). */
  readonly counters: FolioCounters = new FolioCounters();

  /** Allocates every array for a validated geometry; all memory starts free (see `seedFreeLists`). */
  constructor(g: FolioGeometry) {
    const { nrPages, nrNodes, nrMemcgs } = g;
    this.pcpV67 = g.pcpPolicy === "v6.7";
    this.pcpFreeHighBatch = g.pcpFreeHighBatch;
    this.rmapV69 = g.rmapPolicy === "v6.9";
    this.nrPages = nrPages;
    this.nrNodes = nrNodes;
    this.nrMemcgs = nrMemcgs;
    this.pmdOrder = g.pmdOrder;
    this.pageShift = g.pageShift;
    this.maxOrder = g.maxOrder;
    const pcp = pcpZoneSizes(g.pageShift);
    this.pcpBatch = pcp.batch;
    this.pcpHighMin = pcp.high;
    this.pcpHighMax = pcp.highMax;
    this.nrLruvecs = nrNodes * nrMemcgs;
    this.nodeSpan = Math.ceil(nrPages / nrNodes);
    this.flags = new Uint32Array(nrPages);
    this.mapcount = new Int32Array(nrPages).fill(-1);
    this.refcount = new Int32Array(nrPages);
    this.largeMapcount = this.refcount;
    this.freeNext = this.refcount;
    this.mapping = new Int32Array(nrPages).fill(-1);
    this.entireMapcount = this.mapping;
    this.freePrev = this.mapping;
    this.index = new Int32Array(nrPages);
    this.nrPagesMapped = this.index;
    this.priv = new Uint32Array(nrPages);
    this.freeHead = new Int32Array(nrNodes * (g.maxOrder + 1)).fill(-1);
    this.freeBlocks = new Int32Array(nrNodes * (g.maxOrder + 1));
    this.lruFolios = new Int32Array(this.nrLruvecs);
    this.lruPages = new Int32Array(this.nrLruvecs);
    this.stats = new Int32Array(this.nrLruvecs * NR_STAT_ITEMS);
    this.splitQueueLen = new Int32Array(nrMemcgs);
    this.lruBatch = new Int32Array(PAGEVEC_SIZE);
    this.mlockBatch = new Int32Array(PAGEVEC_SIZE);
    this.batchFree = new Int32Array(FOLIO_BATCH_SIZE);
    this.pcpCount = new Int32Array(nrNodes);
    this.pcpEntries = new Int32Array(nrNodes * PCP_LISTS);
    this.pcpFreeFactor = new Int32Array(nrNodes);
    this.pcpHigh = new Int32Array(nrNodes).fill(pcp.high);
    this.pcpPrevHighOrder = new Uint8Array(nrNodes);
    this.nrFree = nrPages;
    this.flags.fill(F_FREE);
  }
}

/** Copies `src` into `dst` in place, reusing `dst`'s array when the lengths match. */
function copyArray<T extends Int32Array | Uint32Array | Uint8Array>(dst: T, src: T): T {
  if (dst.length !== src.length) return src.slice() as T;
  dst.set(src);
  return dst;
}

function copyPutRefsCtx(dst: PutRefsCtx, src: PutRefsCtx): void {
  dst.active = src.active;
  dst.lruvec = src.lruvec;
  dst.lockBatch = src.lockBatch;
  dst.toFree = copyArray(dst.toFree, src.toFree);
  dst.nrToFree = src.nrToFree;
}

/**
 * Makes `dst` an exact copy of `src` (a model facility, nothing the kernel does): every per-pfn array,
 * the free lists, pcp lists, LRU and its batches, statistics, split queues, mlock counts, the page
 * cache, the open put-refs contexts, the lifetime free totals and the counters. `dst`'s free and
 * deferred-split observers are kept (they belong to `dst`'s owner). Arrays are copied into `dst`'s own (no per-page object), so
 * `dst` can be reused for the next copy; both must have the same geometry (EINVAL otherwise).
 */
export function copyFolioState(dst: FolioState, src: FolioState): void {
  if (
    dst.nrPages !== src.nrPages ||
    dst.nrNodes !== src.nrNodes ||
    dst.nrMemcgs !== src.nrMemcgs ||
    dst.pmdOrder !== src.pmdOrder ||
    dst.pageShift !== src.pageShift ||
    dst.maxOrder !== src.maxOrder ||
    dst.pcpV67 !== src.pcpV67 ||
    dst.pcpFreeHighBatch !== src.pcpFreeHighBatch ||
    dst.rmapV69 !== src.rmapV69
  )
    fail("EINVAL", MODULE, "copyFrom", "the two memories differ in geometry or policy");
  if (dst === src) return;
  // refcount, mapping and index carry their union names (largeMapcount, freeNext, …) too.
  dst.flags.set(src.flags);
  dst.mapcount.set(src.mapcount);
  dst.refcount.set(src.refcount);
  dst.mapping.set(src.mapping);
  dst.index.set(src.index);
  dst.priv.set(src.priv);
  dst.freeHead.set(src.freeHead);
  dst.freeBlocks.set(src.freeBlocks);
  dst.nrFree = src.nrFree;
  dst.lruFolios.set(src.lruFolios);
  dst.lruPages.set(src.lruPages);
  dst.stats.set(src.stats);
  dst.splitQueueLen.set(src.splitQueueLen);
  dst.lruBatch.set(src.lruBatch);
  dst.mlockCount =
    src.mlockCount === null
      ? null
      : dst.mlockCount === null
        ? src.mlockCount.slice()
        : copyArray(dst.mlockCount, src.mlockCount);
  dst.mlockBatch.set(src.mlockBatch);
  dst.mlockBatchNr = src.mlockBatchNr;
  dst.lruBatchNr = src.lruBatchNr;
  dst.lruBatchMin = src.lruBatchMin;
  dst.lruBatchMax = src.lruBatchMax;
  dst.pcpCount.set(src.pcpCount);
  dst.pcpEntries.set(src.pcpEntries);
  dst.pcpFreeFactor.set(src.pcpFreeFactor);
  dst.pcpHigh.set(src.pcpHigh);
  dst.pcpPrevHighOrder.set(src.pcpPrevHighOrder);
  dst.batchFree.set(src.batchFree);
  dst.spaces.length = 0;
  for (const a of src.spaces) dst.spaces.push({ swapBacked: a.swapBacked, folios: new Map(a.folios) });
  copyPutRefsCtx(dst.seriesCtx, src.seriesCtx);
  copyPutRefsCtx(dst.releaseCtx, src.releaseCtx);
  dst.freedFoliosTotal = src.freedFoliosTotal;
  dst.freedPagesTotal = src.freedPagesTotal;
  Object.assign(dst.counters, src.counters);
}

/** The state behind each PhysMem (read by `folioState` in `@mmgather/folio/internal`). */
const states = new WeakMap<object, FolioState>();

/** Records `s` as the state of `owner` (the PhysMem that owns it). */
export function registerFolioState(owner: object, s: FolioState): void {
  states.set(owner, s);
}

/** The state of a PhysMem, or undefined for anything else. */
export function folioStateOf(owner: object): FolioState | undefined {
  return states.get(owner);
}

export function isInt(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x);
}

/** First pfn of `node`. */
export function nodeStart(s: FolioState, node: number): number {
  return node * s.nodeSpan;
}

/** One past the last pfn of `node`. */
export function nodeEnd(s: FolioState, node: number): number {
  return Math.min((node + 1) * s.nodeSpan, s.nrPages);
}

/** Node of a pfn. */
export function nodeOf(s: FolioState, pfn: number): number {
  checkPfn(s, "nodeOf", pfn);
  return (pfn / s.nodeSpan) | 0;
}

export function checkPfn(s: FolioState, method: string, pfn: number): void {
  if (!isInt(pfn) || pfn < 0 || pfn >= s.nrPages)
    fail("BAD_PFN", MODULE, method, `(${String(pfn)}): pfn must be an integer in 0..${s.nrPages - 1}`);
}

/** Valid pfn that is the head of an allocated folio. */
export function checkHead(s: FolioState, method: string, head: number): void {
  checkPfn(s, method, head);
  const f = s.flags[head];
  if ((f & F_HEAD) !== 0) return;
  if ((f & F_FREE) !== 0) fail("USE_AFTER_FREE", MODULE, method, `(${head}): pfn ${head} is free memory`);
  fail("NOT_HEAD", MODULE, method, `(${head}): pfn ${head} is a tail page of folio ${s.priv[head]}`);
}

export function checkRange(s: FolioState, method: string, head: number, pfn: number, nr: number): void {
  checkHead(s, method, head);
  if (!isInt(pfn) || !isInt(nr) || nr < 1)
    fail(
      "EINVAL",
      MODULE,
      method,
      `(${head}, ${String(pfn)}, ${String(nr)}): pfn and nr must be integers, nr >= 1`,
    );
  const end = head + (1 << ((s.flags[head] >>> ORDER_SHIFT) & ORDER_MASK));
  if (pfn < head || pfn + nr > end)
    fail(
      "RANGE_OUTSIDE_FOLIO",
      MODULE,
      method,
      `(${head}, ${pfn}, ${nr}): pages [${pfn}, ${pfn + nr}) are not inside folio [${head}, ${end})`,
    );
}

export function checkFlag(method: string, flag: number): void {
  if (!isInt(flag) || flag <= 0 || (flag & PG_ALL_MASK) !== flag || (flag & (flag - 1)) !== 0)
    fail("BAD_FLAG", MODULE, method, `flag ${String(flag)} is not a single PG bit`);
}
