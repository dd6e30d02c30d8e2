// Models: physical memory as the Linux mm teardown path sees it.
//  * Buddy allocator (mm/page_alloc.c): per-node, per-order free lists that split on allocation and
//    merge with the buddy on free; folios of order 0..pmdOrder, naturally aligned; `__free_pages`,
//    `free_unref_page(_list)`, `free_unref_folios`. Omits: zones other than one per node, migratetypes
//    (all movable), watermarks, compaction (allocator cost is reported as folios/pages and cache lines).
//    Free side of the per-CPU page lists (one CPU), v6.5 mm/page_alloc.c: `pcp_allowed_order` orders
//    (≤ PAGE_ALLOC_COSTLY_ORDER, pageblock_order = pmdOrder) are committed to a pcp list
//    (`free_unref_page_commit`: `free_factor`, `free_high`, `nr_pcp_high`, `nr_pcp_free` with
//    PCP_BATCH / PCP_HIGH) and drained by `free_pcppages_bulk` under the zone lock (round robin from the
//    list just added to); other orders take the zone lock in `free_one_page`. The pcp lists are modelled
//    by their entry counts only: pages merge into the buddy at once, so the state digest is canonical.
//    An allocation of a pcp order consumes one entry if its list has one and halves `free_factor`
//    (`rmqueue_pcplist`); refills (`rmqueue_bulk`) are not modelled.
//    `pcpPolicy: "v6.7"` follows the v6.7/v6.8 free side instead (Huang Ying's "mm: PCP high
//    auto-tuning" and "reduce detecting time of consecutive high order page freeing"):
//    `free_unref_page_commit` with `pcp->free_count` (+2^order per free while < batch << 5, halved
//    per pcp-order allocation), PCPF_PREV_FREE_HIGH_ORDER (last free was order 1..3) and
//    PCPF_FREE_HIGH_BATCH (`pcpFreeHighBatch`: the per-CPU LLC slice exceeds 3 × batch pages);
//    `nr_pcp_high` with `high_min` = PCP_HIGH, `high_max` = PCP_HIGH_MAX_V67, raised to
//    free_count + batch when count ≥ high and lowered by batch << 5 on a free_high drain;
//    `nr_pcp_free` = min(count, batch << 5) for free_high, else clamp(free_count, batch, high - batch).
//    Assumed: ZONE_RECLAIM_ACTIVE and ZONE_BELOW_HIGH clear (free memory above the high watermark).
//    Not modelled: the allocation side's `nr_pcp_alloc` (alloc_factor, raising `high` on refill) and
//    the vmstat worker's `decay_pcp_high` (time based); `high` starts at high_min.
//    memcg uncharge is counted per `uncharge_batch` (per memcg run of a freed list / folio batch).
//  * struct page / struct folio (include/linux/mm_types.h): refcount, per-page `_mapcount` (stored -1 for
//    "unmapped"), `_entire_mapcount`, `_nr_pages_mapped` with COMPOUND_MAPPED, `_large_mapcount`, flags,
//    mapping + index, swap entry, memcg. Omits: `_pincount`, mm-id "maybe shared" tracking (7.x),
//    CONFIG_NO_PAGE_MAPCOUNT, hugetlb, zone-device and the huge zero folio.
//  * rmap (mm/rmap.c):
//      - folioAddRmapPtes / folioAddRmapPmd follow 7.x `__folio_add_rmap` + `__folio_mod_stat` (they also
//        stand for `folio_dup_*_rmap_*` at fork: same counters). Anon first-map shortcuts of
//        `folio_add_new_anon_rmap` (plain atomic_set) are not modelled: every add is atomic.
//      - pageRemoveRmap follows `page_remove_rmap` of mm-unstable Aug 2023 (the base of the 2023 series:
//        any large anon folio is queued for deferred split when a PTE removal unmaps a page; a PMD removal
//        when `nr < nr_pmdmapped`).
//      - folioRemoveRmapRange follows the series' `folio_remove_rmap_range` + `__remove_rmap_finish`
//        (v1 1/4, v2 1/5): one `_nr_pages_mapped` atomic per call, always; deferred split only if this call
//        unmapped a page and some page is still mapped.
//      - folioRemoveRmapPtes / folioRemoveRmapPmd follow 7.x `__folio_remove_rmap` with
//        CONFIG_PAGE_MAPCOUNT (`_large_mapcount` atomic, per-page `_mapcount`, one `_nr_pages_mapped`
//        atomic, the `partially_mapped` rule).
//      The 6.5 kernel had no `_large_mapcount`: the 6.5 and series removals keep the model's field
//      consistent (so every variant leaves identical state) without counting an atomic for it.
//      `munlock_vma_folio` is modelled as an immediate `munlock_folio` that clears PG_mlocked (no
//      mlock_count, no mlock folio batch).
//  * Deferred split (mm/huge_memory.c): 6.5 `deferred_split_folio` (returns early if in swap cache or
//    already queued, else takes `split_queue_lock`), 7.x `deferred_split_folio(folio, true)` (takes the
//    lock, sets PG_partially_mapped), and the dequeue at free (`folio_undo_large_rmappable` /
//    `folio_unqueue_deferred_split`: lock only if queued). One queue per memcg (as with CONFIG_MEMCG).
//    Order-0/1 folios are never queued (7.x rule; 6.5 had VM_BUG_ON and no order-1 anon folios).
//    The queue is modelled by membership (PG deferredQueued + a length per queue): nothing in teardown
//    walks it. 7.x's "underused THP" queueing at fault time is omitted.
//  * LRU (mm/swap.c): one lruvec per (node, memcg) with its lock. Lists are modelled by MEMBERSHIP
//    (PG_lru + per-lruvec folio and page counts), not link order: nothing in teardown walks them.
//    `folio_add_lru` uses the 6.5 per-CPU batch (one CPU, PAGEVEC_SIZE, drained at once for large
//    folios); the batch holds a folio reference until `lru_add_drain` / the batch moves.
//    Releasing: 6.5 `release_pages` (lock_batch, SWAP_CLUSTER_MAX, large folios via `__folio_put_large`),
//    the series' `__folios_put_refs_init/do_one/complete` (v2 4/5), and 7.x `folios_put_refs`.
//    Omits: active/inactive/unevictable list choice, LRU gen, memcg uncharge work other than batches.
//  * Page cache (mm/filemap.c): address_space → folios at naturally aligned indices holding
//    folio_nr_pages references each (`__filemap_add_folio`), NR_FILE_PAGES / NR_SHMEM. Omits: xarray
//    node memory, shadow entries, writeback, truncation of mapped folios.
//
// State: struct of arrays indexed by pfn, 24 bytes per page frame (see `PhysMem` field comments for the
// overlays of tail pages and free blocks). Errors: every misuse throws a `FolioError`.

import {
  COMPOUND_MAPPED,
  FOLIO_BATCH_SIZE,
  FOLIO_PAGES_MAPPED,
  MAX_PAGE_ORDER,
  NodeStat,
  NR_STAT_ITEMS,
  PAGEVEC_SIZE,
  PG,
  PG_ALL_MASK,
  PG_MANAGED_MASK,
  SWAP_CLUSTER_MAX,
} from "./constants.js";
import {
  FolioCounters,
  PCP_BATCH,
  PCP_BATCH_SCALE_MAX,
  PCP_HIGH,
  PCP_HIGH_MAX_V67,
  resetFolioCounters,
} from "./counters.js";
import { FolioError, type FolioErrorCode } from "./errors.js";
import {
  DEBUG_VM,
  F_BUDDY,
  F_FREE,
  F_HEAD,
  F_TAIL,
  linesFor,
  MAX_MEMCGS,
  MEMCG_SHIFT,
  ORDER_MASK,
  ORDER_SHIFT,
} from "./layout.js";

/** Configuration of {@link createPhysMem}. */
export interface PhysMemConfig {
  /** Number of 4 KiB page frames. */
  nrPages: number;
  /** NUMA nodes, splitting the pfn range into equal contiguous spans (default 1). */
  nrNodes?: number;
  /** Memory cgroups (default 1): one lruvec per (node, memcg), one deferred-split queue per memcg. */
  nrMemcgs?: number;
  /** Order of a PMD-sized folio (default 9: 2 MiB on x86_64; 8 on s390). */
  pmdOrder?: number;
  /**
   * Free-side rules of the per-CPU page lists (default "v6.5"): "v6.5" (`free_factor`, `free_high`
   * after any drain) or "v6.7" (v6.7+ `free_count`, auto-tuned `high`, PCPF_* flags). A property of
   * the kernel the machine runs, not of the gather variant.
   */
  pcpPolicy?: PcpPolicy;
  /**
   * v6.7 policy only: PCPF_FREE_HIGH_BATCH, set by `zone_pcp_update_cacheinfo` when the CPU's LLC
   * slice (`per_cpu_data_slice_size` = LLC size / CPUs sharing it) exceeds 3 × batch pages (189 pages,
   * 756 KiB). Default false. With it, a free_high drain waits until `pcp->count` ≥ batch.
   */
  pcpFreeHighBatch?: boolean;
}

/** Free-side rules of the per-CPU page lists, by the kernel release that introduced them. */
export type PcpPolicy = "v6.5" | "v6.7";

/** Options of {@link PhysMem.allocFolio}. */
export interface AllocOptions {
  /** Node to allocate from (default 0). */
  node?: number;
  /** Memcg to charge (default 0). */
  memcg?: number;
}

/** Options of {@link PhysMem.createAddressSpace}. */
export interface AddressSpaceOptions {
  /** True for shmem/tmpfs (PG_swapbacked, NR_SHMEM, NR_SHMEM_PMDMAPPED). */
  swapBacked: boolean;
}

/** Called with (head pfn, order) whenever a folio is returned to the allocator. */
export type FreeObserver = (head: number, order: number) => void;

interface AddressSpace {
  readonly swapBacked: boolean;
  /** index of the folio's first page → head pfn (one entry per folio, natural alignment). */
  readonly folios: Map<number, number>;
}

/** The caller-owned context of the series' refactored `release_pages` (`folios_put_refs_ctx`). */
class PutRefsCtx {
  active = false;
  /** Locked lruvec id, -1 = none held. */
  lruvec = -1;
  lockBatch = 0;
  toFree: Int32Array = new Int32Array(64);
  nrToFree = 0;
}

/** PAGE_ALLOC_COSTLY_ORDER. */
const COSTLY_ORDER = 3;
/** Movable pcp lists modelled per node: orders 0..COSTLY_ORDER, then pageblock_order (`order_to_pindex` order). */
const PCP_LISTS = COSTLY_ORDER + 2;

/** Folios up to this many pages are reset by a loop at free, larger ones by TypedArray#fill. */
const FILL_LOOP_MAX = 64;

function isInt(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x);
}

function fail(code: FolioErrorCode, method: string, message: string): never {
  throw new FolioError(code, "phys-mem", method, message);
}

/** Physical memory: page frames, folios, rmap, LRU, page cache and their exact counters. */
export class PhysMem {
  readonly nrPages: number;
  readonly nrNodes: number;
  readonly nrMemcgs: number;
  readonly pmdOrder: number;
  readonly nrLruvecs: number;
  /** Pages per node span (the last node may be shorter). */
  readonly nodeSpan: number;

  /** Per pfn: public PG bits 0..11, F_HEAD/F_TAIL/F_FREE/F_BUDDY, order (head, buddy head), memcg (head). */
  private readonly flags: Uint32Array;
  /** Per pfn: `_mapcount` (-1 = not mapped by any PTE). Free pages: -1. */
  private readonly mapcount: Int32Array;
  /** Head: `_refcount`. page[1] of a large folio: `_large_mapcount` (-1 based). Other tails: 0. Free block head: free-list next (-1 = end). */
  private readonly refcount: Int32Array;
  /** Head: mapping id (anon_vma or address_space; -1 = none). page[1]: `_entire_mapcount` (-1 based). Free block head: free-list prev. */
  private readonly mapping: Int32Array;
  /** Head: `index`. page[1]: `_nr_pages_mapped` (PTE-mapped pages + COMPOUND_MAPPED per entire mapping). */
  private readonly index: Int32Array;
  /** Head: `folio->swap` entry (0 = none). Tails: head pfn (`compound_head`). */
  private readonly priv: Uint32Array;

  /** Free-list heads per (node, order). */
  private readonly freeHead: Int32Array;
  /** Free blocks per (node, order). */
  private readonly freeBlocks: Int32Array;
  private nrFree: number;

  private readonly lruFolios: Int32Array;
  private readonly lruPages: Int32Array;
  /** Statistics per lruvec × item. */
  private readonly stats: Int32Array;
  private readonly splitQueueLen: Int32Array;
  /** The per-CPU LRU-add folio batch (6.5 `cpu_fbatches.lru_add`). */
  private readonly lruBatch: Int32Array;
  private lruBatchNr = 0;
  /** Lowest and highest head in the LRU-add batch (a range filter in front of the membership scan). */
  private lruBatchMin = 0;
  private lruBatchMax = -1;
  /** Per node: pages on the pcp lists (`pcp->count`). */
  private readonly pcpCount: Int32Array;
  /** Per node × PCP_LISTS: entries on each movable pcp list. */
  private readonly pcpEntries: Int32Array;
  /** Per node: v6.5 `pcp->free_factor`; under the v6.7 policy `pcp->free_count`. */
  private readonly pcpFreeFactor: Int32Array;
  /** v6.7 policy: per node `pcp->high` (auto-tuned, in [PCP_HIGH, PCP_HIGH_MAX_V67]). */
  private readonly pcpHigh: Int32Array;
  /** v6.7 policy: per node PCPF_PREV_FREE_HIGH_ORDER (1 = the last pcp free was of order 1..3). */
  private readonly pcpPrevHighOrder: Uint8Array;
  /** True under `pcpPolicy: "v6.7"`. */
  private readonly pcpV67: boolean;
  /** v6.7 policy: PCPF_FREE_HIGH_BATCH. */
  private readonly pcpFreeHighBatch: boolean;
  /** Folios freed by one 7.x folios_put_refs batch. */
  private readonly batchFree: Int32Array;

  private readonly spaces: AddressSpace[] = [];
  private readonly seriesCtx = new PutRefsCtx();
  private readonly releaseCtx = new PutRefsCtx();
  private freeObserver: FreeObserver | null = null;
  /**
   * Folios / pages returned to the allocator since creation: `counters.foliosFreed` / `pagesFreed`
   * without `resetCounters()`. Lets an owner keep lifetime totals without a free observer.
   * @internal
   */
  freedFoliosTotal = 0;
  /** @internal See {@link PhysMem.freedFoliosTotal}. */
  freedPagesTotal = 0;

  /** Exact primitive counters (see {@link FolioCounters}). */
  readonly counters: FolioCounters = new FolioCounters();

  constructor(config: PhysMemConfig) {
    const m = "createPhysMem";
    if (typeof config !== "object" || config === null) fail("EINVAL", m, "config must be an object");
    const { nrPages } = config;
    const nrNodes = config.nrNodes ?? 1;
    const nrMemcgs = config.nrMemcgs ?? 1;
    const pmdOrder = config.pmdOrder ?? 9;
    if (!isInt(nrPages) || nrPages < 1 || nrPages > 2 ** 30)
      fail("EINVAL", m, `nrPages must be an integer in 1..2^30, got ${String(nrPages)}`);
    if (!isInt(nrNodes) || nrNodes < 1 || nrNodes > 64 || nrNodes > nrPages)
      fail("EINVAL", m, `nrNodes must be an integer in 1..min(64, nrPages), got ${String(nrNodes)}`);
    if (!isInt(nrMemcgs) || nrMemcgs < 1 || nrMemcgs > MAX_MEMCGS)
      fail("EINVAL", m, `nrMemcgs must be an integer in 1..${MAX_MEMCGS}, got ${String(nrMemcgs)}`);
    if (!isInt(pmdOrder) || pmdOrder < 1 || pmdOrder > MAX_PAGE_ORDER)
      fail("EINVAL", m, `pmdOrder must be an integer in 1..${MAX_PAGE_ORDER}, got ${String(pmdOrder)}`);
    const pcpPolicy = config.pcpPolicy ?? "v6.5";
    if (pcpPolicy !== "v6.5" && pcpPolicy !== "v6.7")
      fail("EINVAL", m, `pcpPolicy must be "v6.5" or "v6.7", got ${String(pcpPolicy)}`);
    const fhb = config.pcpFreeHighBatch ?? false;
    if (typeof fhb !== "boolean") fail("EINVAL", m, `pcpFreeHighBatch must be a boolean, got ${String(fhb)}`);
    this.pcpV67 = pcpPolicy === "v6.7";
    this.pcpFreeHighBatch = fhb;
    this.nrPages = nrPages;
    this.nrNodes = nrNodes;
    this.nrMemcgs = nrMemcgs;
    this.pmdOrder = pmdOrder;
    this.nrLruvecs = nrNodes * nrMemcgs;
    this.nodeSpan = Math.ceil(nrPages / nrNodes);
    this.flags = new Uint32Array(nrPages);
    this.mapcount = new Int32Array(nrPages).fill(-1);
    this.refcount = new Int32Array(nrPages);
    this.mapping = new Int32Array(nrPages).fill(-1);
    this.index = new Int32Array(nrPages);
    this.priv = new Uint32Array(nrPages);
    this.freeHead = new Int32Array(nrNodes * (MAX_PAGE_ORDER + 1)).fill(-1);
    this.freeBlocks = new Int32Array(nrNodes * (MAX_PAGE_ORDER + 1));
    this.lruFolios = new Int32Array(this.nrLruvecs);
    this.lruPages = new Int32Array(this.nrLruvecs);
    this.stats = new Int32Array(this.nrLruvecs * NR_STAT_ITEMS);
    this.splitQueueLen = new Int32Array(nrMemcgs);
    this.lruBatch = new Int32Array(PAGEVEC_SIZE);
    this.batchFree = new Int32Array(FOLIO_BATCH_SIZE);
    this.pcpCount = new Int32Array(nrNodes);
    this.pcpEntries = new Int32Array(nrNodes * PCP_LISTS);
    this.pcpFreeFactor = new Int32Array(nrNodes);
    this.pcpHigh = new Int32Array(nrNodes).fill(PCP_HIGH);
    this.pcpPrevHighOrder = new Uint8Array(nrNodes);
    this.nrFree = nrPages;
    this.flags.fill(F_FREE);
    for (let node = 0; node < nrNodes; node++) {
      const end = this.nodeEnd(node);
      let pfn = this.nodeStart(node);
      while (pfn < end) {
        let o = MAX_PAGE_ORDER;
        while (o > 0 && ((pfn & ((1 << o) - 1)) !== 0 || pfn + (1 << o) > end)) o--;
        this.flags[pfn] = F_FREE | F_BUDDY | (o << ORDER_SHIFT);
        this.listAdd(node, o, pfn);
        pfn += 1 << o;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Geometry helpers

  /** First pfn of `node`. */
  nodeStart(node: number): number {
    return node * this.nodeSpan;
  }

  /** One past the last pfn of `node`. */
  nodeEnd(node: number): number {
    return Math.min((node + 1) * this.nodeSpan, this.nrPages);
  }

  /** Node of a pfn. */
  nodeOf(pfn: number): number {
    this.checkPfn("nodeOf", pfn);
    return (pfn / this.nodeSpan) | 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Validation

  private checkPfn(method: string, pfn: number): void {
    if (!isInt(pfn) || pfn < 0 || pfn >= this.nrPages)
      fail("BAD_PFN", method, `(${String(pfn)}): pfn must be an integer in 0..${this.nrPages - 1}`);
  }

  /** Valid pfn that is the head of an allocated folio. */
  private checkHead(method: string, head: number): void {
    this.checkPfn(method, head);
    const f = this.flags[head];
    if ((f & F_HEAD) !== 0) return;
    if ((f & F_FREE) !== 0) fail("USE_AFTER_FREE", method, `(${head}): pfn ${head} is free memory`);
    fail("NOT_HEAD", method, `(${head}): pfn ${head} is a tail page of folio ${this.priv[head]}`);
  }

  private checkRange(method: string, head: number, pfn: number, nr: number): void {
    this.checkHead(method, head);
    if (!isInt(pfn) || !isInt(nr) || nr < 1)
      fail(
        "EINVAL",
        method,
        `(${head}, ${String(pfn)}, ${String(nr)}): pfn and nr must be integers, nr >= 1`,
      );
    const end = head + (1 << ((this.flags[head] >>> ORDER_SHIFT) & ORDER_MASK));
    if (pfn < head || pfn + nr > end)
      fail(
        "RANGE_OUTSIDE_FOLIO",
        method,
        `(${head}, ${pfn}, ${nr}): pages [${pfn}, ${pfn + nr}) are not inside folio [${head}, ${end})`,
      );
  }

  private checkFlag(method: string, flag: number): void {
    if (!isInt(flag) || flag <= 0 || (flag & PG_ALL_MASK) !== flag || (flag & (flag - 1)) !== 0)
      fail("BAD_FLAG", method, `flag ${String(flag)} is not a single PG bit`);
  }

  // ---------------------------------------------------------------------------------------------
  // Buddy allocator

  private listAdd(node: number, order: number, pfn: number): void {
    const k = node * (MAX_PAGE_ORDER + 1) + order;
    const next = this.freeHead[k];
    this.refcount[pfn] = next;
    this.mapping[pfn] = -1;
    if (next !== -1) this.mapping[next] = pfn;
    this.freeHead[k] = pfn;
    this.freeBlocks[k]++;
  }

  private listDel(node: number, order: number, pfn: number): void {
    const k = node * (MAX_PAGE_ORDER + 1) + order;
    const prev = this.mapping[pfn];
    const next = this.refcount[pfn];
    if (prev === -1) this.freeHead[k] = next;
    else this.refcount[prev] = next;
    if (next !== -1) this.mapping[next] = prev;
    this.refcount[pfn] = 0;
    this.mapping[pfn] = -1;
    this.freeBlocks[k]--;
  }

  /**
   * `folio_alloc`: a naturally aligned folio of `order` pages from the buddy allocator, refcount 1,
   * unmapped, charged to `memcg`. Cache lines: every struct page of the folio (prep_compound_page)
   * plus one per buddy half put back on a free list.
   */
  allocFolio(order: number, opts?: AllocOptions): number {
    const m = "allocFolio";
    if (!isInt(order) || order < 0 || order > this.pmdOrder)
      fail("BAD_ORDER", m, `(${String(order)}): order must be an integer in 0..${this.pmdOrder}`);
    const node = opts?.node ?? 0;
    const memcg = opts?.memcg ?? 0;
    if (!isInt(node) || node < 0 || node >= this.nrNodes)
      fail("EINVAL", m, `(${order}): node ${String(node)} is not in 0..${this.nrNodes - 1}`);
    if (!isInt(memcg) || memcg < 0 || memcg >= this.nrMemcgs)
      fail("EINVAL", m, `(${order}): memcg ${String(memcg)} is not in 0..${this.nrMemcgs - 1}`);
    const base = node * (MAX_PAGE_ORDER + 1);
    let o = order;
    while (o <= MAX_PAGE_ORDER && this.freeHead[base + o] === -1) o++;
    if (o > MAX_PAGE_ORDER)
      fail("ENOMEM", m, `(${order}): no free block of order >= ${order} on node ${node}`);
    const c = this.counters;
    if (order <= COSTLY_ORDER || order === this.pmdOrder) {
      const li = node * PCP_LISTS + (order <= COSTLY_ORDER ? order : PCP_LISTS - 1);
      if (this.pcpEntries[li] !== 0) {
        this.pcpEntries[li]--;
        this.pcpCount[node] -= 1 << order;
      }
      this.pcpFreeFactor[node] >>= 1;
    }
    const pfn = this.freeHead[base + o];
    this.listDel(node, o, pfn);
    while (o > order) {
      o--;
      const buddy = pfn + (1 << o);
      this.flags[buddy] = F_FREE | F_BUDDY | (o << ORDER_SHIFT);
      this.listAdd(node, o, buddy);
      c.buddySplits++;
      c.metadataLines++;
    }
    const nr = 1 << order;
    const flags = this.flags;
    const priv = this.priv;
    for (let i = 1; i < nr; i++) {
      const p = pfn + i;
      flags[p] = F_TAIL;
      priv[p] = pfn;
      this.refcount[p] = 0;
      this.mapping[p] = 0;
      this.index[p] = 0;
      this.mapcount[p] = -1;
    }
    flags[pfn] = F_HEAD | (order << ORDER_SHIFT) | (memcg << MEMCG_SHIFT);
    this.refcount[pfn] = 1;
    this.mapping[pfn] = -1;
    this.index[pfn] = 0;
    this.mapcount[pfn] = -1;
    priv[pfn] = 0;
    if (order > 0) {
      this.refcount[pfn + 1] = -1;
      this.mapping[pfn + 1] = -1;
      this.index[pfn + 1] = 0;
    }
    this.nrFree -= nr;
    c.foliosAllocated++;
    c.pagesAllocated += nr;
    c.metadataLines += nr;
    return pfn;
  }

  /**
   * Return a folio's pages to the buddy allocator, merging with free buddies. State checks are done by
   * callers. One tight loop over locals: the free-list unlink of each merged buddy is inlined (this runs
   * once per freed folio, so for order-0 folios once per page).
   */
  private freeToBuddy(head: number, order: number): void {
    const nr = 1 << order;
    const flags = this.flags;
    const refcount = this.refcount;
    const mapping = this.mapping;
    if (nr === 1) {
      flags[head] = F_FREE;
      this.mapcount[head] = -1;
      refcount[head] = 0;
      mapping[head] = -1;
      this.index[head] = 0;
      this.priv[head] = 0;
    } else if (nr <= FILL_LOOP_MAX) {
      // TypedArray#fill with a range is a C++ builtin call each: a plain loop is cheaper for small folios.
      const mapcount = this.mapcount;
      const index = this.index;
      const priv = this.priv;
      const end = head + nr;
      for (let p = head; p < end; p++) {
        flags[p] = F_FREE;
        mapcount[p] = -1;
        refcount[p] = 0;
        mapping[p] = -1;
        index[p] = 0;
        priv[p] = 0;
      }
    } else {
      const end = head + nr;
      flags.fill(F_FREE, head, end);
      this.mapcount.fill(-1, head, end);
      refcount.fill(0, head, end);
      mapping.fill(-1, head, end);
      this.index.fill(0, head, end);
      this.priv.fill(0, head, end);
    }
    let node = 0;
    let ns = 0;
    let ne = this.nrPages;
    if (this.nrNodes !== 1) {
      node = (head / this.nodeSpan) | 0;
      ns = this.nodeStart(node);
      ne = this.nodeEnd(node);
    }
    const freeHead = this.freeHead;
    const freeBlocks = this.freeBlocks;
    const kb = node * (MAX_PAGE_ORDER + 1);
    let pfn = head;
    let o = order;
    let merges = 0;
    while (o < MAX_PAGE_ORDER) {
      const size = 1 << o;
      const buddy = pfn ^ size;
      if (buddy < ns || buddy + size > ne) break;
      const bf = flags[buddy];
      if ((bf & F_BUDDY) === 0 || ((bf >>> ORDER_SHIFT) & ORDER_MASK) !== o) break;
      // listDel(node, o, buddy)
      const prev = mapping[buddy];
      const next = refcount[buddy];
      if (prev === -1) freeHead[kb + o] = next;
      else refcount[prev] = next;
      if (next !== -1) mapping[next] = prev;
      refcount[buddy] = 0;
      mapping[buddy] = -1;
      freeBlocks[kb + o]--;
      flags[buddy] = F_FREE;
      merges++;
      if (buddy < pfn) pfn = buddy;
      o++;
    }
    flags[pfn] = F_FREE | F_BUDDY | (o << ORDER_SHIFT);
    // listAdd(node, o, pfn)
    const k = kb + o;
    const first = freeHead[k];
    refcount[pfn] = first;
    mapping[pfn] = -1;
    if (first !== -1) mapping[first] = pfn;
    freeHead[k] = pfn;
    freeBlocks[k]++;
    this.nrFree += nr;
    const c = this.counters;
    c.metadataLines += nr + merges;
    c.buddyMerges += merges;
    c.foliosFreed++;
    c.pagesFreed += nr;
    this.freedFoliosTotal++;
    this.freedPagesTotal += nr;
    if (order <= COSTLY_ORDER || order === this.pmdOrder) this.pcpCommit(node, order);
    else c.zoneLockAcquisitions++;
    const obs = this.freeObserver;
    if (obs !== null) obs(head, order);
  }

  /**
   * `freeToBuddy``(list[i], 0)` for i in [0, n): order-0 folios whose release already passed the
   * free checks (so `_mapcount` is -1 and `_refcount` 0: those stay as they are). One loop over locals,
   * counters added once. With a free observer installed, frees one by one through `freeToBuddy`.
   */
  private freeOrder0List(list: Int32Array, n: number): void {
    if (this.freeObserver !== null || this.nrNodes !== 1) {
      for (let i = 0; i < n; i++) this.freeToBuddy(list[i], 0);
      return;
    }
    const flags = this.flags;
    const refcount = this.refcount;
    const mapping = this.mapping;
    const index = this.index;
    const priv = this.priv;
    const freeHead = this.freeHead;
    const freeBlocks = this.freeBlocks;
    const ne = this.nrPages;
    let merges = 0;
    for (let i = 0; i < n; i++) {
      const head = list[i];
      mapping[head] = -1;
      index[head] = 0;
      priv[head] = 0;
      let pfn = head;
      let o = 0;
      // The next entries may complete an aligned block with this page: freed one by one, each page
      // of [head, head + 2^m) (ascending) would put its block so far on a free list and take it off
      // again at the next page (lists back as they were; none of the block's buddies outside it is
      // looked at below order m), so the block becomes one order-m block after 2^m - 1 merges. A page
      // followed by its order-0 buddy below it (descending pair) likewise becomes one order-1 block.
      let m = 0;
      while (m < MAX_PAGE_ORDER) {
        const sz = 2 << m;
        if ((head & (sz - 1)) !== 0 || i + sz > n) break;
        let q = sz >> 1;
        while (q < sz && list[i + q] === head + q) q++;
        if (q !== sz) break;
        m++;
      }
      let block = 1 << m;
      if (m === 0 && i + 1 < n && list[i + 1] === (head ^ 1)) {
        pfn = head ^ 1;
        flags[head] = F_FREE;
        block = 2;
        o = 1;
      } else o = m;
      if (block > 1) {
        pfn &= ~(block - 1);
        for (let q = 0; q < block; q++) {
          const p = pfn + q;
          mapping[p] = -1;
          index[p] = 0;
          priv[p] = 0;
          flags[p] = F_FREE;
        }
        merges += block - 1;
        i += block - 1;
      }
      while (o < MAX_PAGE_ORDER) {
        const size = 1 << o;
        const buddy = pfn ^ size;
        if (buddy + size > ne) break;
        const bf = flags[buddy];
        if ((bf & F_BUDDY) === 0 || ((bf >>> ORDER_SHIFT) & ORDER_MASK) !== o) break;
        const prev = mapping[buddy];
        const next = refcount[buddy];
        if (prev === -1) freeHead[o] = next;
        else refcount[prev] = next;
        if (next !== -1) mapping[next] = prev;
        refcount[buddy] = 0;
        mapping[buddy] = -1;
        freeBlocks[o]--;
        flags[buddy] = F_FREE;
        merges++;
        if (buddy < pfn) pfn = buddy;
        o++;
      }
      if (pfn !== head) flags[head] = F_FREE;
      flags[pfn] = F_FREE | F_BUDDY | (o << ORDER_SHIFT);
      const first = freeHead[o];
      refcount[pfn] = first;
      mapping[pfn] = -1;
      if (first !== -1) mapping[first] = pfn;
      freeHead[o] = pfn;
      freeBlocks[o]++;
    }
    // pcpCommit(0, 0) per page (order 0 never takes the free_high path). The pcp lists are counts
    // only, independent of the buddy lists, so their commits run in a loop of their own.
    if (this.pcpV67) this.pcpCommitOrder0V67(n);
    else this.pcpCommitOrder0V65(n);
    this.nrFree += n;
    const c = this.counters;
    c.metadataLines += n + merges;
    c.buddyMerges += merges;
    c.foliosFreed += n;
    c.pagesFreed += n;
    c.pcpFrees += n;
    this.freedFoliosTotal += n;
    this.freedPagesTotal += n;
  }

  /** `n` v6.5 order-0 commits on node 0 (counters other than the drains' are the caller's). */
  private pcpCommitOrder0V65(n: number): void {
    const pcpEntries = this.pcpEntries;
    const pcpCount = this.pcpCount;
    let entries = pcpEntries[0];
    let count = pcpCount[0];
    for (let i = 0; i < n; i++) {
      entries++;
      count++;
      if (count >= PCP_HIGH) {
        pcpEntries[0] = entries;
        pcpCount[0] = count;
        this.pcpDrainHigh(0, 0);
        entries = pcpEntries[0];
        count = pcpCount[0];
      }
    }
    pcpEntries[0] = entries;
    pcpCount[0] = count;
  }

  /**
   * `n` v6.7 order-0 commits on node 0: each clears PCPF_PREV_FREE_HIGH_ORDER, adds 1 to `free_count`
   * while below batch << 5, and runs the `nr_pcp_high` tail when `count` ≥ `high`.
   */
  private pcpCommitOrder0V67(n: number): void {
    if (n === 0) return;
    this.pcpPrevHighOrder[0] = 0;
    const pcpEntries = this.pcpEntries;
    const pcpCount = this.pcpCount;
    const fcMax = PCP_BATCH << PCP_BATCH_SCALE_MAX;
    let entries = pcpEntries[0];
    let count = pcpCount[0];
    let fc = this.pcpFreeFactor[0];
    let high = this.pcpHigh[0];
    for (let i = 0; i < n; i++) {
      entries++;
      count++;
      if (fc < fcMax) fc++;
      if (count >= high) {
        pcpEntries[0] = entries;
        pcpCount[0] = count;
        this.pcpFreeFactor[0] = fc;
        this.pcpDrainHighV67(0, 0, count, fc);
        entries = pcpEntries[0];
        count = pcpCount[0];
        high = this.pcpHigh[0];
      }
    }
    pcpEntries[0] = entries;
    pcpCount[0] = count;
    this.pcpFreeFactor[0] = fc;
  }

  /**
   * v6.5 `free_unref_page_commit` (pcp lock held by the caller): add one entry of 2^order pages and,
   * when `pcp->count` ≥ `nr_pcp_high`, drain `nr_pcp_free` pages with `free_pcppages_bulk`.
   */
  private pcpCommit(node: number, order: number): void {
    if (this.pcpV67) {
      this.pcpCommitV67(node, order);
      return;
    }
    const li = order <= COSTLY_ORDER ? order : PCP_LISTS - 1;
    this.counters.pcpFrees++;
    this.pcpEntries[node * PCP_LISTS + li]++;
    const count = this.pcpCount[node] + (1 << order);
    this.pcpCount[node] = count;
    const ff = this.pcpFreeFactor[node];
    // free_high: high-order (non-THP) frees while freeing without allocation drain everything.
    if (ff !== 0 && order !== 0 && order <= COSTLY_ORDER) {
      this.pcpBulkFree(node, count, li);
      return;
    }
    if (count < PCP_HIGH) return;
    this.pcpDrainHigh(node, li);
  }

  /** The `count ≥ high` tail of `pcpCommit`. */
  private pcpDrainHigh(node: number, li: number): void {
    // nr_pcp_free: batch << free_factor clamped to [batch, high - batch]; free_factor grows while below.
    const ff = this.pcpFreeFactor[node];
    const maxFree = PCP_HIGH - PCP_BATCH;
    const b = PCP_BATCH << ff;
    if (b < maxFree) this.pcpFreeFactor[node] = ff + 1;
    this.pcpBulkFree(node, Math.min(b, maxFree), li);
  }

  /**
   * v6.7+ `free_unref_page_commit` (pcp lock held by the caller): add the entry; decide `free_high`
   * from `free_count` ≥ batch, PCPF_PREV_FREE_HIGH_ORDER and (with PCPF_FREE_HIGH_BATCH) `count` ≥
   * batch, for orders 1..COSTLY_ORDER; bump `free_count`; then `nr_pcp_high` / `nr_pcp_free`.
   */
  private pcpCommitV67(node: number, order: number): void {
    const li = order <= COSTLY_ORDER ? order : PCP_LISTS - 1;
    this.counters.pcpFrees++;
    this.pcpEntries[node * PCP_LISTS + li]++;
    const nr = 1 << order;
    const count = this.pcpCount[node] + nr;
    this.pcpCount[node] = count;
    const fc = this.pcpFreeFactor[node];
    let freeHigh = false;
    if (order !== 0 && order <= COSTLY_ORDER) {
      freeHigh =
        fc >= PCP_BATCH &&
        this.pcpPrevHighOrder[node] !== 0 &&
        (!this.pcpFreeHighBatch || count >= PCP_BATCH);
      this.pcpPrevHighOrder[node] = 1;
    } else this.pcpPrevHighOrder[node] = 0;
    const fcMax = PCP_BATCH << PCP_BATCH_SCALE_MAX;
    const fc2 = fc < fcMax ? fc + nr : fc;
    this.pcpFreeFactor[node] = fc2;
    if (freeHigh) {
      // nr_pcp_high(free_high): high drops by batch << 5 (not below high_min) and 0 is returned, so
      // nr_pcp_free drains min(count, batch << 5).
      const h = this.pcpHigh[node] - fcMax;
      this.pcpHigh[node] = Math.max(h, PCP_HIGH);
      this.pcpBulkFree(node, fcMax, li);
      return;
    }
    if (count >= this.pcpHigh[node]) this.pcpDrainHighV67(node, li, count, fc2);
  }

  /**
   * The `count ≥ high` tail of v6.7 `nr_pcp_high` (no reclaim, zone above the high watermark: raise
   * `high` to free_count + batch within [high_min, high_max]) and `nr_pcp_free` (clamp(free_count,
   * batch, old high − batch) pages).
   */
  private pcpDrainHighV67(node: number, li: number, count: number, fc: number): void {
    const high = this.pcpHigh[node];
    if (count < high) return;
    const need = fc + PCP_BATCH;
    if (high < need) this.pcpHigh[node] = Math.min(need, PCP_HIGH_MAX_V67);
    const maxFree = high - PCP_BATCH;
    this.pcpBulkFree(node, Math.max(PCP_BATCH, Math.min(fc, maxFree)), li);
  }

  /**
   * v6.5 `free_pcppages_bulk(zone, count, pcp, pindex)`: under one zone lock, take entries from the list
   * `li` first, then round robin over the non-empty lists, until `min(count, pcp->count)` pages went.
   */
  private pcpBulkFree(node: number, count: number, li: number): void {
    const c = this.counters;
    c.zoneLockAcquisitions++;
    c.pcpBulkDrains++;
    const entries = this.pcpEntries;
    const base = node * PCP_LISTS;
    let left = Math.min(count, this.pcpCount[node]);
    let l = li - 1;
    while (left > 0) {
      do if (++l === PCP_LISTS) l = 0;
      while (entries[base + l] === 0);
      const nrp = 1 << (l === PCP_LISTS - 1 ? this.pmdOrder : l);
      const want = Math.ceil(left / nrp);
      const k = Math.min(want, entries[base + l]);
      entries[base + l] -= k;
      left -= k * nrp;
      this.pcpCount[node] -= k * nrp;
      c.pcpPagesDrained += k * nrp;
    }
  }

  /**
   * True when `assertFreeable` would pass for a folio with flags `f` (the common case, checked inline
   * by the release loops; on false they call `assertFreeable`, which throws the precise error).
   */
  private freeableFast(head: number, f: number): boolean {
    if ((f & (PG.locked | PG.writeback | PG.swapcache)) !== 0) return false;
    if (((f >>> ORDER_SHIFT) & ORDER_MASK) === 0 ? this.mapcount[head] >= 0 : this.refcount[head + 1] >= 0)
      return false;
    if ((f & PG.anon) === 0 && this.mapping[head] >= 0) return false;
    return !this.lruBatchHas(head);
  }

  /** Bad-page checks of `free_pages_prepare` that apply when the last reference goes. */
  private assertFreeable(method: string, head: number): void {
    const f = this.flags[head];
    const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
    const mapped = order === 0 ? this.mapcount[head] >= 0 : this.refcount[head + 1] >= 0;
    if (mapped)
      fail(
        "FREE_MAPPED",
        method,
        `(${head}): folio is still mapped (mapcount ${this.folioMapcountRaw(head)})`,
      );
    if ((f & (PG.locked | PG.writeback | PG.swapcache)) !== 0)
      fail(
        "FREE_BAD_FLAGS",
        method,
        `(${head}): folio still has ${(f & PG.locked) !== 0 ? "PG_locked" : (f & PG.writeback) !== 0 ? "PG_writeback" : "PG_swapcache"} set`,
      );
    if ((f & PG.anon) === 0 && this.mapping[head] >= 0)
      fail("FREE_BAD_FLAGS", method, `(${head}): folio is still in page cache mapping ${this.mapping[head]}`);
    if (this.lruBatchHas(head))
      fail("FREE_BAD_FLAGS", method, `(${head}): folio is still in the per-CPU LRU-add batch`);
  }

  /** `free_unref_page` / `__free_pages`: free a folio whose only remaining reference is the caller's (refcount 1), or 0. */
  freeFolio(head: number): void {
    const m = "freeFolio";
    this.checkPfn(m, head);
    const f = this.flags[head];
    if ((f & F_FREE) !== 0) fail("DOUBLE_FREE", m, `(${head}): pfn ${head} is already free`);
    if ((f & F_HEAD) === 0)
      fail("NOT_HEAD", m, `(${head}): pfn ${head} is a tail page of folio ${this.priv[head]}`);
    const rc = this.refcount[head];
    if (rc > 1) fail("FREE_WITH_REFS", m, `(${head}): folio still has refcount ${rc}`);
    this.assertFreeable(m, head);
    if (rc === 1) {
      this.refcount[head] = 0;
      this.counters.refcountAtomics++;
      this.counters.metadataLines++;
    }
    this.releaseAtZero(head);
  }

  /** `__folio_put`: LRU removal (own lruvec lock), stale mlock, deferred-split dequeue, then free. */
  private releaseAtZero(head: number): void {
    const c = this.counters;
    const f = this.flags[head];
    if ((f & PG.lru) !== 0) {
      c.lruvecLockAcquisitions++;
      this.lruvecDel(this.lruvecOfHead(head), head);
      c.metadataLines++;
    }
    this.clearStaleMlock(head);
    this.unqueueDeferredSplit(head);
    c.memcgUnchargeBatches++;
    const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
    if (order <= COSTLY_ORDER || order === this.pmdOrder) c.pcpLockAcquisitions++;
    this.freeToBuddy(head, order);
  }

  private clearStaleMlock(head: number): void {
    if ((this.flags[head] & PG.mlocked) !== 0) {
      this.flags[head] &= ~PG.mlocked;
      this.counters.mlockClearedAtFree++;
    }
  }

  /** Register (or with null remove) the observer called whenever a folio is returned to the allocator. */
  setFreeObserver(fn: FreeObserver | null): void {
    if (fn !== null && typeof fn !== "function")
      fail("EINVAL", "setFreeObserver", "observer must be a function or null");
    this.freeObserver = fn;
  }

  /** True if `pfn` lies in a free buddy block. */
  isFree(pfn: number): boolean {
    this.checkPfn("isFree", pfn);
    return (this.flags[pfn] & F_FREE) !== 0;
  }

  /** Number of free page frames. */
  nrFreePages(): number {
    return this.nrFree;
  }

  /** Free buddy blocks as [pfn, order] pairs sorted by pfn (diagnostics and tests). */
  freeBlockList(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let pfn = 0; pfn < this.nrPages; pfn++) {
      const f = this.flags[pfn];
      if ((f & F_BUDDY) !== 0) out.push([pfn, (f >>> ORDER_SHIFT) & ORDER_MASK]);
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Folio identity

  /** `page_folio`: head pfn of the folio containing `pfn`. */
  folioHead(pfn: number): number {
    const m = "folioHead";
    this.checkPfn(m, pfn);
    const f = this.flags[pfn];
    if ((f & F_FREE) !== 0) fail("USE_AFTER_FREE", m, `(${pfn}): pfn ${pfn} is free memory`);
    return (f & F_TAIL) !== 0 ? this.priv[pfn] : pfn;
  }

  /**
   * `page_folio` without checks: head pfn of the folio containing `pfn`, for hot callers that hold a
   * mapped pfn (a PTE's, a gathered entry's). Meaningless for a free pfn.
   * @internal
   */
  folioHeadUnchecked(pfn: number): number {
    return (this.flags[pfn] & F_TAIL) !== 0 ? this.priv[pfn] : pfn;
  }

  /** `folio_nr_pages` of a head known to be live (no checks). @internal */
  folioNrPagesUnchecked(head: number): number {
    return 1 << ((this.flags[head] >>> ORDER_SHIFT) & ORDER_MASK);
  }

  /** The flags word of a head known to be live (PG bits in the low bits; no checks). @internal */
  folioFlagsUnchecked(head: number): number {
    return this.flags[head];
  }

  /**
   * True when `f`, the flags word of a live pfn ({@link folioFlagsUnchecked} of a pfn a present PTE
   * maps), is that of an order-0 folio (its own head): lets a walk read each pfn's flags once. @internal
   */
  flagsOrder0(f: number): boolean {
    return (f & (F_TAIL | (ORDER_MASK << ORDER_SHIFT))) === 0;
  }

  /** `folio_test_*` of a head known to be live, for a single PG bit (no checks). @internal */
  folioTestUnchecked(head: number, flag: number): boolean {
    return (this.flags[head] & flag) !== 0;
  }

  /** `folio_order`. */
  folioOrder(head: number): number {
    this.checkHead("folioOrder", head);
    return (this.flags[head] >>> ORDER_SHIFT) & ORDER_MASK;
  }

  /** `folio_nr_pages`. */
  folioNrPages(head: number): number {
    this.checkHead("folioNrPages", head);
    return 1 << ((this.flags[head] >>> ORDER_SHIFT) & ORDER_MASK);
  }

  /** Memcg the folio is charged to. */
  folioMemcg(head: number): number {
    this.checkHead("folioMemcg", head);
    return this.flags[head] >>> MEMCG_SHIFT;
  }

  // ---------------------------------------------------------------------------------------------
  // Refcount

  /** `folio_ref_count`. */
  folioRef(head: number): number {
    this.checkHead("folioRef", head);
    return this.refcount[head];
  }

  /** `folio_get`: one atomic increment. */
  folioGet(head: number): void {
    this.checkHead("folioGet", head);
    if (this.refcount[head] <= 0)
      fail("BAD_STATE", "folioGet", `(${head}): folio_get on a folio with refcount 0`);
    this.refcount[head]++;
    this.counters.refcountAtomics++;
    this.counters.metadataLines++;
  }

  /** `folio_ref_add(folio, nr)`: one atomic add. */
  folioRefAdd(head: number, nr: number): void {
    const m = "folioRefAdd";
    this.checkHead(m, head);
    if (!isInt(nr) || nr < 1) fail("EINVAL", m, `(${head}, ${String(nr)}): nr must be an integer >= 1`);
    if (this.refcount[head] <= 0) fail("BAD_STATE", m, `(${head}): folio_ref_add on a folio with refcount 0`);
    this.refcount[head] += nr;
    this.counters.refcountAtomics++;
    this.counters.metadataLines++;
  }

  /** `folio_put`: one atomic decrement; at zero the folio is released through `__folio_put`. */
  folioPut(head: number): void {
    const m = "folioPut";
    this.checkHead(m, head);
    const rc = this.refcount[head];
    if (rc <= 0) fail("REFCOUNT_UNDERFLOW", m, `(${head}): folio refcount is already ${rc}`);
    if (rc === 1) this.assertFreeable(m, head);
    this.refcount[head] = rc - 1;
    this.counters.refcountAtomics++;
    this.counters.metadataLines++;
    if (rc === 1) this.releaseAtZero(head);
  }

  /** `folio_ref_sub_and_test`: one atomic subtract; true if it reached zero (the folio is NOT freed: call freeFolio). */
  folioRefSubAndTest(head: number, nr: number): boolean {
    const m = "folioRefSubAndTest";
    this.checkHead(m, head);
    if (!isInt(nr) || nr < 1) fail("EINVAL", m, `(${head}, ${String(nr)}): nr must be an integer >= 1`);
    const rc = this.refcount[head];
    if (rc < nr) fail("REFCOUNT_UNDERFLOW", m, `(${head}, ${nr}): folio refcount is only ${rc}`);
    this.refcount[head] = rc - nr;
    this.counters.refcountAtomics++;
    this.counters.metadataLines++;
    return rc === nr;
  }

  // ---------------------------------------------------------------------------------------------
  // Mapcount readers

  /** PTE mapcount of one page (`_mapcount + 1`). */
  pageMapcount(pfn: number): number {
    const m = "pageMapcount";
    this.checkPfn(m, pfn);
    if ((this.flags[pfn] & F_FREE) !== 0) fail("USE_AFTER_FREE", m, `(${pfn}): pfn ${pfn} is free memory`);
    return this.mapcount[pfn] + 1;
  }

  private folioMapcountRaw(head: number): number {
    const order = (this.flags[head] >>> ORDER_SHIFT) & ORDER_MASK;
    return order === 0 ? this.mapcount[head] + 1 : this.refcount[head + 1] + 1;
  }

  /** `folio_mapcount`: all PTE and PMD mappings of the folio (7.x: `_large_mapcount + 1`). */
  folioMapcount(head: number): number {
    this.checkHead("folioMapcount", head);
    return this.folioMapcountRaw(head);
  }

  /** `folio_mapped`: small: `_mapcount >= 0`; large: `_nr_pages_mapped != 0`. */
  folioMapped(head: number): boolean {
    this.checkHead("folioMapped", head);
    const order = (this.flags[head] >>> ORDER_SHIFT) & ORDER_MASK;
    return order === 0 ? this.mapcount[head] >= 0 : this.index[head + 1] !== 0;
  }

  /** `folio_entire_mapcount` (`_entire_mapcount + 1`; 0 for small folios). */
  entireMapcount(head: number): number {
    this.checkHead("entireMapcount", head);
    return ((this.flags[head] >>> ORDER_SHIFT) & ORDER_MASK) === 0 ? 0 : this.mapping[head + 1] + 1;
  }

  /** Raw `_nr_pages_mapped` (includes COMPOUND_MAPPED per entire mapping; 0 for small folios). */
  nrPagesMapped(head: number): number {
    this.checkHead("nrPagesMapped", head);
    return ((this.flags[head] >>> ORDER_SHIFT) & ORDER_MASK) === 0 ? 0 : this.index[head + 1];
  }

  /** `folio_large_mapcount` (`_large_mapcount + 1`); for a small folio its `_mapcount + 1`. */
  largeMapcount(head: number): number {
    this.checkHead("largeMapcount", head);
    return this.folioMapcountRaw(head);
  }

  // ---------------------------------------------------------------------------------------------
  // Flags, mapping, index, swap

  /** `folio_test_*`. */
  folioTest(head: number, flag: number): boolean {
    this.checkHead("folioTest", head);
    this.checkFlag("folioTest", flag);
    return (this.flags[head] & flag) !== 0;
  }

  /** `folio_set_*` for flags not owned by this package's primitives (lru, anon, swapbacked, deferred split are refused). */
  folioSet(head: number, flag: number): void {
    this.checkHead("folioSet", head);
    this.checkFlag("folioSet", flag);
    if ((flag & PG_MANAGED_MASK) !== 0)
      fail(
        "BAD_FLAG",
        "folioSet",
        `(${head}): flag ${flag} is managed by folio primitives (LRU, rmap, page cache)`,
      );
    this.flags[head] |= flag;
  }

  /** `folio_clear_*` (same restrictions as {@link folioSet}). */
  folioClear(head: number, flag: number): void {
    this.checkHead("folioClear", head);
    this.checkFlag("folioClear", flag);
    if ((flag & PG_MANAGED_MASK) !== 0)
      fail(
        "BAD_FLAG",
        "folioClear",
        `(${head}): flag ${flag} is managed by folio primitives (LRU, rmap, page cache)`,
      );
    this.flags[head] &= ~flag;
  }

  /** `folio->mapping` id (anon_vma id for anon folios, address_space id for page cache; -1 = none). */
  folioMapping(head: number): number {
    this.checkHead("folioMapping", head);
    return this.mapping[head];
  }

  /** `folio->index`. */
  folioIndex(head: number): number {
    this.checkHead("folioIndex", head);
    return this.index[head];
  }

  /** `folio->swap` (0 = none). */
  folioSwap(head: number): number {
    this.checkHead("folioSwap", head);
    return this.priv[head];
  }

  /** Set `folio->swap` (0 clears it). */
  folioSetSwap(head: number, entry: number): void {
    const m = "folioSetSwap";
    this.checkHead(m, head);
    if (!isInt(entry) || entry < 0 || entry > 0xffffffff)
      fail("EINVAL", m, `(${head}, ${String(entry)}): swap entry must be an integer in 0..2^32-1`);
    this.priv[head] = entry;
  }

  /** The anon half of `folio_add_new_anon_rmap`: mapping = anon_vma, index, PG_anon + PG_swapbacked. */
  folioSetAnon(head: number, anonVma: number, index: number): void {
    const m = "folioSetAnon";
    this.checkHead(m, head);
    if (!isInt(anonVma) || anonVma < 0 || anonVma > 0x7fffffff)
      fail("EINVAL", m, `(${head}, ${String(anonVma)}): anonVma must be a non-negative int32`);
    if (!isInt(index) || index < 0 || index > 0x7fffffff)
      fail("EINVAL", m, `(${head}, ${anonVma}, ${String(index)}): index must be a non-negative int32`);
    if (this.folioMapcountRaw(head) !== 0) fail("BAD_STATE", m, `(${head}): folio is already mapped`);
    const f = this.flags[head];
    if ((f & PG.anon) === 0 && this.mapping[head] >= 0)
      fail("BAD_STATE", m, `(${head}): folio is in page cache mapping ${this.mapping[head]}`);
    this.mapping[head] = anonVma;
    this.index[head] = index;
    this.flags[head] = f | PG.anon | PG.swapbacked;
  }

  // ---------------------------------------------------------------------------------------------
  // Statistics

  private lruvecOfHead(head: number): number {
    const memcg = this.flags[head] >>> MEMCG_SHIFT;
    return this.nrNodes === 1 ? memcg : ((head / this.nodeSpan) | 0) * this.nrMemcgs + memcg;
  }

  /** `__lruvec_stat_mod_folio` (node + memcg statistics of the folio's lruvec). */
  private statMod(head: number, item: number, delta: number): void {
    this.stats[this.lruvecOfHead(head) * NR_STAT_ITEMS + item] += delta;
    this.counters.statUpdates++;
  }

  private checkStatItem(method: string, item: number): void {
    if (!isInt(item) || item < 0 || item >= NR_STAT_ITEMS)
      fail("EINVAL", method, `(${String(item)}): not a NodeStat item`);
  }

  /** Node statistic in pages (summed over memcgs); without `node`, summed over all nodes. */
  nodeStat(item: number, node?: number): number {
    const m = "nodeStat";
    this.checkStatItem(m, item);
    if (node !== undefined && (!isInt(node) || node < 0 || node >= this.nrNodes))
      fail("EINVAL", m, `(${item}, ${String(node)}): node is not in 0..${this.nrNodes - 1}`);
    let sum = 0;
    for (let lv = 0; lv < this.nrLruvecs; lv++) {
      if (node !== undefined && ((lv / this.nrMemcgs) | 0) !== node) continue;
      sum += this.stats[lv * NR_STAT_ITEMS + item];
    }
    return sum;
  }

  /** Statistic of one lruvec (node, memcg). */
  lruvecStat(lruvec: number, item: number): number {
    this.checkLruvec("lruvecStat", lruvec);
    this.checkStatItem("lruvecStat", item);
    return this.stats[lruvec * NR_STAT_ITEMS + item];
  }

  // ---------------------------------------------------------------------------------------------
  // Deferred split

  /** mm-unstable Aug 2023 `deferred_split_folio(folio)`. */
  private deferredSplit65(head: number): void {
    const c = this.counters;
    c.deferredSplitCalls++;
    const f = this.flags[head];
    if (((f >>> ORDER_SHIFT) & ORDER_MASK) < 2) {
      c.metadataLines++;
      return;
    }
    c.metadataLines += 2;
    if ((f & PG.swapcache) !== 0) return;
    if ((f & PG.deferredQueued) !== 0) return;
    c.splitQueueLockAcquisitions++;
    this.flags[head] = f | PG.deferredQueued;
    this.splitQueueLen[f >>> MEMCG_SHIFT]++;
    c.deferredSplitQueued++;
  }

  /** 7.x `deferred_split_folio(folio, partially_mapped = true)`. */
  private deferredSplit7(head: number): void {
    const c = this.counters;
    c.deferredSplitCalls++;
    let f = this.flags[head];
    if (((f >>> ORDER_SHIFT) & ORDER_MASK) < 2) {
      c.metadataLines++;
      return;
    }
    c.metadataLines += 2;
    if ((f & PG.swapcache) !== 0) return;
    c.splitQueueLockAcquisitions++;
    f |= PG.partiallyMapped;
    if ((f & PG.deferredQueued) === 0) {
      f |= PG.deferredQueued;
      this.splitQueueLen[f >>> MEMCG_SHIFT]++;
      c.deferredSplitQueued++;
    }
    this.flags[head] = f;
  }

  /** `folio_undo_large_rmappable` (6.5) / `folio_unqueue_deferred_split` (7.x) at free. */
  private unqueueDeferredSplit(head: number): void {
    const f = this.flags[head];
    if (((f >>> ORDER_SHIFT) & ORDER_MASK) < 2) return;
    const c = this.counters;
    c.metadataLines++;
    if ((f & PG.deferredQueued) === 0) return;
    c.splitQueueLockAcquisitions++;
    this.flags[head] = f & ~(PG.deferredQueued | PG.partiallyMapped);
    this.splitQueueLen[f >>> MEMCG_SHIFT]--;
    c.deferredSplitDequeued++;
  }

  /** Folios on the deferred-split queue of `memcg` (all memcgs if omitted). */
  splitQueueLength(memcg?: number): number {
    if (memcg === undefined) {
      let s = 0;
      for (let i = 0; i < this.nrMemcgs; i++) s += this.splitQueueLen[i];
      return s;
    }
    if (!isInt(memcg) || memcg < 0 || memcg >= this.nrMemcgs)
      fail("EINVAL", "splitQueueLength", `(${String(memcg)}): memcg is not in 0..${this.nrMemcgs - 1}`);
    return this.splitQueueLen[memcg];
  }

  private munlock(head: number): void {
    this.counters.munlockCalls++;
    this.counters.metadataLines++;
    this.flags[head] &= ~PG.mlocked;
  }

  // ---------------------------------------------------------------------------------------------
  // rmap: add

  /** 7.x `folio_add_{anon,file}_rmap_ptes(folio, page, nr)`: map `nr` pages starting at `pfn` by PTE. */
  folioAddRmapPtes(head: number, pfn: number, nr: number): void {
    this.checkRange("folioAddRmapPtes", head, pfn, nr);
    const c = this.counters;
    const f = this.flags[head];
    const mc = this.mapcount;
    let nrNew = 0;
    if (((f >>> ORDER_SHIFT) & ORDER_MASK) === 0) {
      const v = ++mc[head];
      c.mapcountAtomics++;
      c.metadataLines++;
      if (v === 0) nrNew = 1;
    } else {
      let first = 0;
      const end = pfn + nr;
      for (let p = pfn; p < end; p++) if (++mc[p] === 0) first++;
      c.mapcountAtomics += nr;
      const t1 = head + 1;
      if (first !== 0) {
        const v = this.index[t1] + first;
        this.index[t1] = v;
        c.nrPagesMappedAtomics++;
        if (v < COMPOUND_MAPPED) nrNew = first;
      }
      this.refcount[t1] += nr;
      c.largeMapcountAtomics++;
      c.metadataLines += linesFor(pfn, nr, head, t1, -1);
    }
    if (nrNew !== 0)
      this.statMod(head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, nrNew);
    if (DEBUG_VM) this.checkFolio("folioAddRmapPtes", head);
  }

  /** 7.x `folio_add_{anon,file}_rmap_pmd`: map a PMD-sized folio entirely. */
  folioAddRmapPmd(head: number): void {
    const m = "folioAddRmapPmd";
    this.checkHead(m, head);
    const f = this.flags[head];
    const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
    if (order !== this.pmdOrder)
      fail("EINVAL", m, `(${head}): folio order ${order} is not the PMD order ${this.pmdOrder}`);
    const c = this.counters;
    const t1 = head + 1;
    let nrNew = 0;
    let nrPmd = 0;
    const e = ++this.mapping[t1];
    c.entireMapcountAtomics++;
    if (e === 0) {
      const v = this.index[t1] + COMPOUND_MAPPED;
      this.index[t1] = v;
      c.nrPagesMappedAtomics++;
      if (v < COMPOUND_MAPPED + COMPOUND_MAPPED) {
        nrPmd = 1 << order;
        nrNew = nrPmd - (v & FOLIO_PAGES_MAPPED);
        if (nrNew < 0) nrNew = 0;
      }
    }
    this.refcount[t1]++;
    c.largeMapcountAtomics++;
    c.metadataLines += 2;
    this.modStat(head, f, nrNew, nrPmd);
    if (DEBUG_VM) this.checkFolio(m, head);
  }

  /** 7.x `__folio_mod_stat(folio, nr, nr_pmdmapped)` (negative values for removal). */
  private modStat(head: number, f: number, nr: number, nrPmd: number): void {
    if (nr !== 0)
      this.statMod(head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, nr);
    if (nrPmd !== 0) this.statMod(head, this.pmdStatItem(f), nrPmd);
  }

  private pmdStatItem(f: number): number {
    return (f & PG.anon) !== 0
      ? NodeStat.NR_ANON_THPS
      : (f & PG.swapbacked) !== 0
        ? NodeStat.NR_SHMEM_PMDMAPPED
        : NodeStat.NR_FILE_PMDMAPPED;
  }

  // ---------------------------------------------------------------------------------------------
  // rmap: remove

  /**
   * Decrements `_mapcount` of pages [pfn, pfn + nr) and returns how many became unmapped. On underflow
   * every decrement is undone and MAPCOUNT_UNDERFLOW thrown (same outcome as checking first).
   */
  private decMapcounts(method: string, head: number, pfn: number, nr: number): number {
    const mc = this.mapcount;
    const end = pfn + nr;
    let unmapped = 0;
    for (let p = pfn; p < end; p++) {
      const v = --mc[p];
      if (v === -1) unmapped++;
      else if (v < -1) {
        for (let q = pfn; q <= p; q++) mc[q]++;
        this.checkUnmapRange(method, head, pfn, nr);
      }
    }
    return unmapped;
  }

  private checkUnmapRange(method: string, head: number, pfn: number, nr: number): void {
    const mc = this.mapcount;
    const end = pfn + nr;
    for (let p = pfn; p < end; p++)
      if (mc[p] < 0)
        fail("MAPCOUNT_UNDERFLOW", method, `(${head}, ${pfn}, ${nr}): page ${p} is not mapped by any PTE`);
  }

  private checkPmdUnmap(method: string, head: number): number {
    this.checkHead(method, head);
    const f = this.flags[head];
    const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
    if (order !== this.pmdOrder)
      fail("EINVAL", method, `(${head}): folio order ${order} is not the PMD order ${this.pmdOrder}`);
    if (this.mapping[head + 1] < 0) fail("MAPCOUNT_UNDERFLOW", method, `(${head}): folio is not PMD-mapped`);
    return f;
  }

  /**
   * 6.5 (mm-unstable Aug 2023) `page_remove_rmap(page, vma, compound)`: remove one PTE mapping of `pfn`,
   * or (compound) the PMD mapping of the folio headed by `pfn`.
   */
  pageRemoveRmap(pfn: number, compound: boolean, vmaLocked = false): void {
    const m = "pageRemoveRmap";
    this.checkPfn(m, pfn);
    const pf = this.flags[pfn];
    if ((pf & F_FREE) !== 0) fail("USE_AFTER_FREE", m, `(${pfn}): pfn ${pfn} is free memory`);
    if (!compound) {
      this.pageRemoveRmapPte(m, (pf & F_TAIL) !== 0 ? this.priv[pfn] : pfn, pfn, vmaLocked);
      return;
    }
    const c = this.counters;
    let nr = 0;
    let nrPmd = 0;
    if ((pf & F_HEAD) === 0) fail("NOT_HEAD", m, `(${pfn}, true): compound removal needs a folio head`);
    const head = pfn;
    const f = this.checkPmdUnmap(m, head);
    const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
    const t1 = head + 1;
    this.refcount[t1]--;
    const e = --this.mapping[t1];
    c.entireMapcountAtomics++;
    if (e === -1) {
      const v = this.index[t1] - COMPOUND_MAPPED;
      this.index[t1] = v;
      c.nrPagesMappedAtomics++;
      if (v < COMPOUND_MAPPED) {
        nrPmd = 1 << order;
        nr = nrPmd - (v & FOLIO_PAGES_MAPPED);
        if (nr < 0) nr = 0;
      }
    }
    c.metadataLines += 2;
    if (nrPmd !== 0) this.statMod(head, this.pmdStatItem(f), -nrPmd);
    if (nr !== 0) {
      this.statMod(head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, -nr);
      if (order > 0 && (f & PG.anon) !== 0 && nr < nrPmd) this.deferredSplit65(head);
    }
    if (vmaLocked) this.munlock(head);
    if (DEBUG_VM) this.checkFolio(m, head);
  }

  /**
   * {@link pageRemoveRmap}`(pfn, false)` without the pfn checks, for hot callers (the zap walk, the
   * gather's delayed-rmap flush) holding a pfn mapped by a PTE and its folio's `head`. Mapcount underflow
   * is still detected (nothing is changed when it is).
   * @internal
   */
  pageRemoveRmapPteUnchecked(head: number, pfn: number): void {
    this.pageRemoveRmapPte("pageRemoveRmap", head, pfn, false);
  }

  /**
   * {@link pageRemoveRmapPteUnchecked}`(head, pfn + j)` for j = 0 … nr-1 — one 6.5 `page_remove_rmap`
   * per page, each with its own counters, stat update and deferred-split call — in one loop over
   * locals (the 6.5 walk's runs through a large folio). The caller guarantees `[pfn, pfn + nr)` lies in
   * the live folio `head`. Stops at the first page whose mapcount would underflow (throws; earlier
   * pages stay removed, as with separate calls).
   * @internal
   */
  pageRemoveRmapPtesUnchecked(head: number, pfn: number, nr: number): void {
    // An order-0 folio still mapped: small enough for the callers' compilers to inline.
    // Copied in the three unchecked removals on purpose: a shared helper costs hot callers an inline level.
    const f = this.flags[head];
    if ((f & (ORDER_MASK << ORDER_SHIFT)) === 0 && nr === 1 && !DEBUG_VM) {
      const mc = this.mapcount;
      const v0 = mc[pfn];
      if (v0 >= 0) {
        mc[pfn] = v0 - 1;
        const c = this.counters;
        c.mapcountAtomics++;
        c.metadataLines++;
        if (v0 === 0)
          this.statMod(head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, -1);
        return;
      }
    }
    this.pageRemoveRmapPtesAny(head, pfn, nr, f);
  }

  /** The general case of {@link PhysMem.pageRemoveRmapPtesUnchecked} (`f`: the folio's flags). */
  private pageRemoveRmapPtesAny(head: number, pfn: number, nr: number, f: number): void {
    if (((f >>> ORDER_SHIFT) & ORDER_MASK) === 0 || nr === 1 || DEBUG_VM) {
      for (let j = 0; j < nr; j++) this.pageRemoveRmapPte("pageRemoveRmap", head, pfn + j, false);
      return;
    }
    const c = this.counters;
    const mc = this.mapcount;
    const anon = (f & PG.anon) !== 0;
    const t1 = head + 1;
    // Per page: its _mapcount atomic; when it became unmapped, the _nr_pages_mapped atomic and — if no
    // entire mapping remains — the stat update and the deferred-split call. Only the _mapcount
    // decrements are per-page stores; the page[1] fields move by one per page, so their per-page
    // sequence is summed (and the counters added) once the run is done or a page would underflow.
    const end = pfn + nr;
    let p = pfn;
    let unmapped = 0;
    let lines = 0;
    for (; p < end; p++) {
      const v0 = mc[p];
      if (v0 < 0) break;
      mc[p] = v0 - 1;
      // linesFor(p, 1, head, v0 === 0 ? t1 : -1, -1)
      lines += 1 + (p !== head ? 1 : 0);
      if (v0 === 0) {
        unmapped++;
        if (p !== t1) lines++;
      }
    }
    const done = p - pfn;
    this.refcount[t1] -= done;
    c.mapcountAtomics += done;
    c.metadataLines += lines;
    if (unmapped !== 0) {
      const index = this.index;
      const v0 = index[t1];
      index[t1] = v0 - unmapped;
      c.nrPagesMappedAtomics += unmapped;
      // The k-th decrement leaves v0 - k: below COMPOUND_MAPPED for k > v0 - COMPOUND_MAPPED.
      const above = v0 - COMPOUND_MAPPED;
      const stat = above <= 0 ? unmapped : above >= unmapped ? 0 : unmapped - above;
      if (stat !== 0) {
        // statMod's slot: the lruvec (node, memcg) and item never change while the folio is mapped.
        const si =
          this.lruvecOfHead(head) * NR_STAT_ITEMS +
          (anon ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED);
        this.stats[si] -= stat;
        c.statUpdates += stat;
        if (anon) this.deferredSplit65Calls(head, stat);
      }
    }
    if (p < end) fail("MAPCOUNT_UNDERFLOW", "pageRemoveRmap", `(${p}): page ${p} is not mapped by any PTE`);
  }

  /**
   * `calls` consecutive `deferredSplit65``(head)` calls: only the first can queue (the others
   * find the folio queued or in the swap cache and return early), each is counted.
   */
  private deferredSplit65Calls(head: number, calls: number): void {
    this.deferredSplit65(head);
    if (calls === 1) return;
    const c = this.counters;
    c.deferredSplitCalls += calls - 1;
    c.metadataLines += (calls - 1) * (((this.flags[head] >>> ORDER_SHIFT) & ORDER_MASK) < 2 ? 1 : 2);
  }

  /** The PTE (non-compound) half of 6.5 `page_remove_rmap`. */
  private pageRemoveRmapPte(m: string, head: number, pfn: number, vmaLocked: boolean): void {
    const c = this.counters;
    const f = this.flags[head];
    const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
    const mc = this.mapcount;
    const v0 = mc[pfn];
    if (v0 < 0) fail("MAPCOUNT_UNDERFLOW", m, `(${pfn}): page ${pfn} is not mapped by any PTE`);
    mc[pfn] = v0 - 1;
    const last = v0 === 0;
    c.mapcountAtomics++;
    let nr = last ? 1 : 0;
    if (order === 0) {
      c.metadataLines++;
    } else {
      const t1 = head + 1;
      this.refcount[t1]--;
      if (last) {
        const v = --this.index[t1];
        c.nrPagesMappedAtomics++;
        nr = v < COMPOUND_MAPPED ? 1 : 0;
        c.metadataLines += linesFor(pfn, 1, head, t1, -1);
      } else c.metadataLines += linesFor(pfn, 1, head, -1, -1);
    }
    if (nr !== 0) {
      this.statMod(head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, -1);
      if (order > 0 && (f & PG.anon) !== 0) this.deferredSplit65(head);
    }
    if (vmaLocked && order === 0) this.munlock(head);
    if (DEBUG_VM) this.checkFolio(m, head);
  }

  /** The 2023 series' `folio_remove_rmap_range(folio, page, nr, vma)`: remove `nr` PTE mappings inside one folio. */
  folioRemoveRmapRange(head: number, pfn: number, nr: number, vmaLocked = false): void {
    this.checkRange("folioRemoveRmapRange", head, pfn, nr);
    this.folioRemoveRmapRangeUnchecked(head, pfn, nr, vmaLocked);
  }

  /**
   * {@link folioRemoveRmapRange} without the argument checks, for hot callers (the gather's flush) that
   * guarantee `head` is a live folio and `[pfn, pfn + nr)` lies inside it. Mapcount underflow is still
   * detected (and nothing is changed when it is).
   * @internal
   */
  folioRemoveRmapRangeUnchecked(head: number, pfn: number, nr: number, vmaLocked = false): void {
    // An order-0 folio still mapped: small enough for the callers' compilers to inline.
    // Copied in the three unchecked removals on purpose: a shared helper costs hot callers an inline level.
    const f = this.flags[head];
    if ((f & (F_HEAD | (ORDER_MASK << ORDER_SHIFT))) === F_HEAD && !vmaLocked && !DEBUG_VM) {
      const mc = this.mapcount;
      const v0 = mc[pfn];
      if (v0 >= 0) {
        mc[pfn] = v0 - 1;
        const c = this.counters;
        c.mapcountAtomics++;
        c.metadataLines++;
        if (v0 === 0)
          this.statMod(head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, -1);
        return;
      }
    }
    this.folioRemoveRmapRangeAny(head, pfn, nr, vmaLocked);
  }

  /** The general case of {@link PhysMem.folioRemoveRmapRangeUnchecked}. */
  private folioRemoveRmapRangeAny(head: number, pfn: number, nr: number, vmaLocked: boolean): void {
    const m = "folioRemoveRmapRange";
    const c = this.counters;
    const f = this.flags[head];
    if ((f & F_HEAD) === 0) this.checkHead(m, head);
    const mc = this.mapcount;
    const large = ((f >>> ORDER_SHIFT) & ORDER_MASK) !== 0;
    let nrUnmapped = 0;
    let nrMapped = 0;
    if (!large) {
      if (mc[pfn] < 0) this.checkUnmapRange(m, head, pfn, 1);
      if (--mc[pfn] === -1) nrUnmapped = 1;
      c.mapcountAtomics++;
      c.metadataLines++;
    } else {
      nrUnmapped = this.decMapcounts(m, head, pfn, nr);
      c.mapcountAtomics += nr;
      const t1 = head + 1;
      nrMapped = this.index[t1] - nrUnmapped;
      this.index[t1] = nrMapped;
      c.nrPagesMappedAtomics++;
      if (nrMapped >= COMPOUND_MAPPED) nrUnmapped = 0;
      this.refcount[t1] -= nr;
      c.metadataLines += linesFor(pfn, nr, head, t1, -1);
    }
    if (nrUnmapped !== 0) {
      this.statMod(
        head,
        (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED,
        -nrUnmapped,
      );
      if (large && (f & PG.anon) !== 0 && nrMapped !== 0) this.deferredSplit65(head);
    }
    if (vmaLocked && !large) this.munlock(head);
    if (DEBUG_VM) this.checkFolio(m, head);
  }

  /** 7.x `folio_remove_rmap_ptes(folio, page, nr, vma)` (CONFIG_PAGE_MAPCOUNT). */
  folioRemoveRmapPtes(head: number, pfn: number, nr: number, vmaLocked = false): void {
    this.checkRange("folioRemoveRmapPtes", head, pfn, nr);
    this.folioRemoveRmapPtesUnchecked(head, pfn, nr, vmaLocked);
  }

  /**
   * {@link folioRemoveRmapPtes} without the argument checks, for hot callers (the zap walk, the gather)
   * that guarantee `head` is a live folio and `[pfn, pfn + nr)` lies inside it. Mapcount underflow is
   * still detected (and nothing is changed when it is).
   * @internal
   */
  folioRemoveRmapPtesUnchecked(head: number, pfn: number, nr: number, vmaLocked = false): void {
    // An order-0 folio still mapped: small enough for the callers' compilers to inline.
    // Copied in the three unchecked removals on purpose: a shared helper costs hot callers an inline level.
    const f = this.flags[head];
    if ((f & (F_HEAD | (ORDER_MASK << ORDER_SHIFT))) === F_HEAD && !vmaLocked && !DEBUG_VM) {
      const mc = this.mapcount;
      const v0 = mc[head];
      if (v0 >= 0) {
        mc[head] = v0 - 1;
        const c = this.counters;
        c.mapcountAtomics++;
        c.metadataLines++;
        if (v0 === 0)
          this.statMod(head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, -1);
        return;
      }
    }
    this.folioRemoveRmapPtesAny(head, pfn, nr, vmaLocked);
  }

  /**
   * {@link folioRemoveRmapPtesUnchecked}`(pfns[j], pfns[j], 1)` for j in [0, n): each pfn is a live
   * folio's head mapped by the caller's PTE (the 7.x zap walk's runs of order-0 PTEs). The order-0
   * case runs over locals with its counters added once; any other entry takes the per-call path.
   * @internal
   */
  folioRemoveRmapPteList(pfns: Int32Array, n: number): void {
    const flags = this.flags;
    const mc = this.mapcount;
    const stats = this.stats;
    const oneNode = this.nrNodes === 1;
    const c = this.counters;
    let done = 0;
    let stat = 0;
    try {
      for (let j = 0; j < n; j++) {
        const head = pfns[j];
        const f = flags[head];
        const v0 = mc[head];
        if ((f & (F_HEAD | (ORDER_MASK << ORDER_SHIFT))) === F_HEAD && v0 >= 0 && !DEBUG_VM) {
          mc[head] = v0 - 1;
          done++;
          if (v0 === 0) {
            const lv = oneNode ? f >>> MEMCG_SHIFT : this.lruvecOfHead(head);
            stats[
              lv * NR_STAT_ITEMS + ((f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED)
            ] -= 1;
            stat++;
          }
          continue;
        }
        this.folioRemoveRmapPtesUnchecked(head, head, 1);
      }
    } finally {
      c.mapcountAtomics += done;
      c.metadataLines += done;
      c.statUpdates += stat;
    }
  }

  /** The general case of {@link PhysMem.folioRemoveRmapPtesUnchecked}. */
  private folioRemoveRmapPtesAny(head: number, pfn: number, nr: number, vmaLocked: boolean): void {
    const m = "folioRemoveRmapPtes";
    const c = this.counters;
    const f = this.flags[head];
    if ((f & F_HEAD) === 0) this.checkHead(m, head);
    const mc = this.mapcount;
    let nrU = 0;
    let partially = false;
    if (((f >>> ORDER_SHIFT) & ORDER_MASK) === 0) {
      if (mc[head] < 0) this.checkUnmapRange(m, head, pfn, 1);
      if (--mc[head] === -1) nrU = 1;
      c.mapcountAtomics++;
      c.metadataLines++;
    } else {
      const t1 = head + 1;
      const last = this.decMapcounts(m, head, pfn, nr);
      this.refcount[t1] -= nr;
      c.largeMapcountAtomics++;
      c.mapcountAtomics += nr;
      if (last !== 0) {
        const v = this.index[t1] - last;
        this.index[t1] = v;
        c.nrPagesMappedAtomics++;
        if (v < COMPOUND_MAPPED) nrU = last;
      }
      partially = nrU !== 0 && this.index[t1] !== 0;
      c.metadataLines += linesFor(pfn, nr, head, t1, -1);
    }
    if (partially && (f & PG.anon) !== 0 && (f & PG.partiallyMapped) === 0) this.deferredSplit7(head);
    this.modStat(head, f, -nrU, 0);
    if (vmaLocked) this.munlock(head);
    if (DEBUG_VM) this.checkFolio(m, head);
  }

  /** 7.x `folio_remove_rmap_pmd(folio, page, vma)`. */
  folioRemoveRmapPmd(head: number, vmaLocked = false): void {
    const m = "folioRemoveRmapPmd";
    const f = this.checkPmdUnmap(m, head);
    const c = this.counters;
    const t1 = head + 1;
    this.refcount[t1]--;
    c.largeMapcountAtomics++;
    let nr = 0;
    let nrPmd = 0;
    const e = --this.mapping[t1];
    c.entireMapcountAtomics++;
    if (e === -1) {
      const v = this.index[t1] - COMPOUND_MAPPED;
      this.index[t1] = v;
      c.nrPagesMappedAtomics++;
      if (v < COMPOUND_MAPPED) {
        nrPmd = 1 << ((f >>> ORDER_SHIFT) & ORDER_MASK);
        nr = nrPmd - (v & FOLIO_PAGES_MAPPED);
        if (nr < 0) nr = 0;
      }
    }
    c.metadataLines += 2;
    const partially = nr !== 0 && nr < nrPmd;
    if (partially && (f & PG.anon) !== 0 && (f & PG.partiallyMapped) === 0) this.deferredSplit7(head);
    this.modStat(head, f, -nr, -nrPmd);
    if (vmaLocked) this.munlock(head);
    if (DEBUG_VM) this.checkFolio(m, head);
  }

  // ---------------------------------------------------------------------------------------------
  // LRU

  private checkLruvec(method: string, lruvec: number): void {
    if (!isInt(lruvec) || lruvec < 0 || lruvec >= this.nrLruvecs)
      fail("EINVAL", method, `(${String(lruvec)}): lruvec is not in 0..${this.nrLruvecs - 1}`);
  }

  private lruvecAdd(lv: number, head: number): void {
    this.flags[head] |= PG.lru;
    this.lruFolios[lv]++;
    this.lruPages[lv] += 1 << ((this.flags[head] >>> ORDER_SHIFT) & ORDER_MASK);
    this.counters.lruAdds++;
  }

  /** `lruvec_del_folio` + `__folio_clear_lru_flags`. */
  private lruvecDel(lv: number, head: number): void {
    const f = this.flags[head];
    this.flags[head] = f & ~(PG.lru | PG.active);
    this.lruFolios[lv]--;
    this.lruPages[lv] -= 1 << ((f >>> ORDER_SHIFT) & ORDER_MASK);
    this.counters.lruDels++;
  }

  private lruBatchHas(head: number): boolean {
    const n = this.lruBatchNr;
    if (n === 0 || head < this.lruBatchMin || head > this.lruBatchMax) return false;
    for (let i = 0; i < n; i++) if (this.lruBatch[i] === head) return true;
    return false;
  }

  /** lruvec id (node × nrMemcgs + memcg) of a folio (`folio_lruvec`). */
  lruvecOf(head: number): number {
    this.checkHead("lruvecOf", head);
    return this.lruvecOfHead(head);
  }

  /** Pages on the LRU lists of `lruvec`. */
  lruvecNrPages(lruvec: number): number {
    this.checkLruvec("lruvecNrPages", lruvec);
    return this.lruPages[lruvec];
  }

  /** Folios on the LRU lists of `lruvec`. */
  lruvecNrFolios(lruvec: number): number {
    this.checkLruvec("lruvecNrFolios", lruvec);
    return this.lruFolios[lruvec];
  }

  /** Folios waiting in the per-CPU LRU-add batch. */
  lruAddBatchCount(): number {
    return this.lruBatchNr;
  }

  /**
   * 6.5 `folio_add_lru`: take a reference for the per-CPU batch; move the batch to the LRU when it is
   * full (PAGEVEC_SIZE) or the folio is large.
   */
  folioAddLru(head: number): void {
    const m = "folioAddLru";
    this.checkHead(m, head);
    const f = this.flags[head];
    if ((f & PG.lru) !== 0) fail("BAD_STATE", m, `(${head}): folio is already on an LRU list`);
    if (this.lruBatchHas(head)) fail("BAD_STATE", m, `(${head}): folio is already in the LRU-add batch`);
    if (this.refcount[head] <= 0) fail("BAD_STATE", m, `(${head}): folio has refcount 0`);
    this.refcount[head]++;
    this.counters.refcountAtomics++;
    this.counters.metadataLines++;
    if (this.lruBatchNr === 0) {
      this.lruBatchMin = head;
      this.lruBatchMax = head;
    } else if (head < this.lruBatchMin) this.lruBatchMin = head;
    else if (head > this.lruBatchMax) this.lruBatchMax = head;
    this.lruBatch[this.lruBatchNr++] = head;
    if (this.lruBatchNr === PAGEVEC_SIZE || ((f >>> ORDER_SHIFT) & ORDER_MASK) !== 0) this.moveLruBatch();
  }

  /** 6.5 `folio_batch_move_lru(fbatch, lru_add_fn)`: relock per lruvec change, then `release_pages` the batch refs. */
  private moveLruBatch(): void {
    const c = this.counters;
    const n = this.lruBatchNr;
    let lv = -1;
    for (let i = 0; i < n; i++) {
      const head = this.lruBatch[i];
      const l = this.lruvecOfHead(head);
      if (l !== lv) {
        lv = l;
        c.lruvecLockAcquisitions++;
      }
      this.lruvecAdd(l, head);
      c.metadataLines++;
    }
    this.lruBatchNr = 0;
    const ctx = this.releaseCtx;
    this.putRefsInit(ctx);
    for (let i = 0; i < n; i++) this.putRefsDoOne(ctx, this.lruBatch[i], 1, "lruAddDrain");
    this.putRefsComplete(ctx);
  }

  /** `lru_add_drain()`: move this CPU's LRU-add batch to the LRU. */
  lruAddDrain(): void {
    this.counters.lruAddDrainCalls++;
    if (this.lruBatchNr !== 0) this.moveLruBatch();
  }

  // ---------------------------------------------------------------------------------------------
  // Releasing batches

  private putRefsInit(ctx: PutRefsCtx): void {
    ctx.active = true;
    ctx.lruvec = -1;
    ctx.lockBatch = 0;
    ctx.nrToFree = 0;
  }

  /** `__folios_put_refs_do_one(ctx, folio, refs)` (== 6.5 `release_pages` loop body with refs = 1). */
  private putRefsDoOne(ctx: PutRefsCtx, head: number, refs: number, method: string): void {
    const c = this.counters;
    if (ctx.lruvec !== -1 && ++ctx.lockBatch === SWAP_CLUSTER_MAX) ctx.lruvec = -1;
    const f = this.flags[head];
    if ((f & F_HEAD) === 0)
      fail(
        (f & F_FREE) !== 0 ? "USE_AFTER_FREE" : "NOT_HEAD",
        method,
        `(${head}): not the head of an allocated folio`,
      );
    const rc = this.refcount[head];
    if (rc < refs) fail("REFCOUNT_UNDERFLOW", method, `(${head}): dropping ${refs} refs from refcount ${rc}`);
    if (rc === refs && !this.freeableFast(head, f)) this.assertFreeable(method, head);
    this.refcount[head] = rc - refs;
    c.refcountAtomics++;
    c.metadataLines++;
    if (rc !== refs) return;
    if (((f >>> ORDER_SHIFT) & ORDER_MASK) !== 0) {
      ctx.lruvec = -1;
      this.releaseAtZero(head);
      return;
    }
    if ((f & PG.lru) !== 0) {
      const l = this.lruvecOfHead(head);
      if (l !== ctx.lruvec) {
        ctx.lruvec = l;
        ctx.lockBatch = 0;
        c.lruvecLockAcquisitions++;
      }
      this.lruvecDel(l, head);
    }
    this.clearStaleMlock(head);
    if (ctx.nrToFree === ctx.toFree.length) {
      const grown = new Int32Array(ctx.toFree.length * 2);
      grown.set(ctx.toFree);
      ctx.toFree = grown;
    }
    ctx.toFree[ctx.nrToFree++] = head;
  }

  /** `__folios_put_refs_complete`: unlock, `mem_cgroup_uncharge_list`, `free_unref_page_list`. */
  private putRefsComplete(ctx: PutRefsCtx): void {
    ctx.lruvec = -1;
    ctx.active = false;
    const c = this.counters;
    c.freeListCalls++;
    const n = ctx.nrToFree;
    ctx.nrToFree = 0;
    const toFree = ctx.toFree;
    // mem_cgroup_uncharge_list: one uncharge_batch per run of same-memcg folios.
    let mc = -1;
    for (let i = 0; i < n; i++) {
      const m = this.flags[toFree[i]] >>> MEMCG_SHIFT;
      if (m !== mc) {
        mc = m;
        c.memcgUnchargeBatches++;
      }
    }
    // free_unref_page_list: pcp lock per zone change, dropped every SWAP_CLUSTER_MAX pages. Counted
    // first (it only counts), then the frees in one loop.
    let locked = -1;
    let batch = 0;
    let pcpLocks = 0;
    for (let i = 0; i < n; i++) {
      const head = toFree[i];
      const node = this.nrNodes === 1 ? 0 : (head / this.nodeSpan) | 0;
      if (node !== locked) {
        locked = node;
        batch = 0;
        pcpLocks++;
      }
      if (++batch === SWAP_CLUSTER_MAX) locked = -1;
    }
    c.pcpLockAcquisitions += pcpLocks;
    this.freeOrder0List(toFree, n);
  }

  private pageToHead(method: string, pfn: number): number {
    this.checkPfn(method, pfn);
    const f = this.flags[pfn];
    if ((f & F_FREE) !== 0) fail("USE_AFTER_FREE", method, `(${pfn}): pfn ${pfn} is free memory`);
    return (f & F_TAIL) !== 0 ? this.priv[pfn] : pfn;
  }

  /**
   * 6.5 `release_pages(pages, nr)`: drop one reference per entry (entries are any pfn of a folio);
   * the lruvec lock is held across consecutive small LRU folios, dropped every SWAP_CLUSTER_MAX folios
   * processed and for every large folio (released by `__folio_put_large` with its own lock).
   */
  releasePages(pages: ArrayLike<number>, start: number, nr: number): void {
    const m = "releasePages";
    if (pages === null || typeof pages !== "object" || !isInt(pages.length))
      fail("EINVAL", m, "pages must be an array-like of pfns");
    if (!isInt(start) || !isInt(nr) || start < 0 || nr < 0 || start + nr > pages.length)
      fail(
        "EINVAL",
        m,
        `(start ${String(start)}, nr ${String(nr)}): range outside pages[0..${pages.length})`,
      );
    for (let i = start; i < start + nr; i++) this.pageToHead(m, pages[i]);
    this.releasePagesUnchecked(pages, start, nr);
  }

  /**
   * {@link releasePages} without the up-front argument checks, for the gather's flush, which only
   * holds pfns of live folios. A free or tail entry still throws (from the per-folio step).
   * @internal
   */
  releasePagesUnchecked(pages: ArrayLike<number>, start: number, nr: number): void {
    const m = "releasePages";
    const ctx = this.releaseCtx;
    const flags = this.flags;
    const priv = this.priv;
    const refcount = this.refcount;
    const c = this.counters;
    this.putRefsInit(ctx);
    // ctx.lruvec / ctx.lockBatch and the inline path's counters live in locals between the calls of
    // the full per-folio step.
    let lv = -1;
    let lockBatch = 0;
    let puts = 0;
    const end = start + nr;
    for (let i = start; i < end; i++) {
      const pfn = pages[i];
      const head = (flags[pfn] & F_TAIL) !== 0 ? priv[pfn] : pfn;
      const rc = refcount[head];
      if (rc > 1 && (flags[head] & F_HEAD) !== 0) {
        // putRefsDoOne when this is not the last reference (a page of a large folio whose other pages
        // are still queued): lock-batch step, one atomic, nothing else.
        if (lv !== -1 && ++lockBatch === SWAP_CLUSTER_MAX) lv = -1;
        refcount[head] = rc - 1;
        puts++;
        continue;
      }
      ctx.lruvec = lv;
      ctx.lockBatch = lockBatch;
      c.refcountAtomics += puts;
      c.metadataLines += puts;
      puts = 0;
      this.putRefsDoOne(ctx, head, 1, m);
      lv = ctx.lruvec;
      lockBatch = ctx.lockBatch;
    }
    c.refcountAtomics += puts;
    c.metadataLines += puts;
    ctx.lruvec = lv;
    ctx.lockBatch = lockBatch;
    this.putRefsComplete(ctx);
  }

  /** The series' `__folios_put_refs_init(ctx)` (v2 4/5). One context may be open at a time. */
  foliosPutRefsInit(): void {
    if (this.seriesCtx.active)
      fail("BAD_STATE", "foliosPutRefsInit", "a folios_put_refs context is already open");
    this.putRefsInit(this.seriesCtx);
  }

  /** The series' `__folios_put_refs_do_one(ctx, folio, refs)`: `folio_ref_sub_and_test(folio, refs)` and release. */
  foliosPutRefsDoOne(head: number, refs: number): void {
    const m = "foliosPutRefsDoOne";
    if (!this.seriesCtx.active) fail("BAD_STATE", m, "no open context: call foliosPutRefsInit() first");
    this.checkHead(m, head);
    if (!isInt(refs) || refs < 1)
      fail("EINVAL", m, `(${head}, ${String(refs)}): refs must be an integer >= 1`);
    this.putRefsDoOne(this.seriesCtx, head, refs, m);
  }

  /**
   * {@link foliosPutRefsDoOne} without the argument checks (the gather's flush holds live heads and
   * refs ≥ 1). A free or tail `head` still throws, from the shared per-folio step.
   * @internal
   */
  foliosPutRefsDoOneUnchecked(head: number, refs: number): void {
    if (!this.seriesCtx.active)
      fail("BAD_STATE", "foliosPutRefsDoOne", "no open context: call foliosPutRefsInit() first");
    this.putRefsDoOne(this.seriesCtx, head, refs, "foliosPutRefsDoOne");
  }

  /** The series' `__folios_put_refs_complete(ctx)`. */
  foliosPutRefsComplete(): void {
    if (!this.seriesCtx.active) fail("BAD_STATE", "foliosPutRefsComplete", "no open context");
    this.putRefsComplete(this.seriesCtx);
  }

  /**
   * 7.x `folios_put_refs(folio_batch, refs)`: ≤ FOLIO_BATCH_SIZE folios, `refs[i]` references each; the
   * lruvec lock is held across the batch (relocked only on lruvec change); folios reaching zero, large
   * ones included, are dequeued from deferred split, taken off the LRU and freed together
   * (`mem_cgroup_uncharge_folios` + `free_unref_folios`).
   */
  foliosPutRefs(heads: ArrayLike<number>, refs: ArrayLike<number>, nr: number): void {
    const m = "foliosPutRefs";
    if (heads === null || typeof heads !== "object" || refs === null || typeof refs !== "object")
      fail("EINVAL", m, "heads and refs must be array-likes");
    if (!isInt(nr) || nr < 0 || nr > FOLIO_BATCH_SIZE || nr > heads.length || nr > refs.length)
      fail("EINVAL", m, `(nr ${String(nr)}): nr must be in 0..${FOLIO_BATCH_SIZE} and within both arrays`);
    for (let i = 0; i < nr; i++) {
      this.checkHead(m, heads[i]);
      const r = refs[i];
      if (!isInt(r) || r < 1) fail("EINVAL", m, `(refs[${i}] = ${String(r)}): refs must be integers >= 1`);
    }
    this.foliosPutRefsUnchecked(heads, refs, nr);
  }

  /**
   * {@link foliosPutRefs} without the argument checks, for the gather's flush, which only holds heads
   * of live folios and counts ≥ 1 in `nr ≤ FOLIO_BATCH_SIZE` typed-array slots. Refcount underflow and
   * freeing a mapped folio are still detected.
   * @internal
   */
  foliosPutRefsUnchecked(heads: ArrayLike<number>, refs: ArrayLike<number>, nr: number): void {
    const m = "foliosPutRefs";
    const c = this.counters;
    const flags = this.flags;
    const refcount = this.refcount;
    const mapcount = this.mapcount;
    const mapping = this.mapping;
    const lruFolios = this.lruFolios;
    const lruPages = this.lruPages;
    const batchFree = this.batchFree;
    const oneNode = this.nrNodes === 1;
    // The per-CPU LRU-add batch cannot change inside this call: an empty one holds none of the folios.
    const lruBatchEmpty = this.lruBatchNr === 0;
    // An order-0 head (not tail, no order bits) with none of the flags that fail freeableFast or need
    // work beyond the LRU removal.
    const slowMask =
      F_HEAD | F_TAIL | (ORDER_MASK << ORDER_SHIFT) | PG.locked | PG.writeback | PG.swapcache | PG.mlocked;
    let lv = -1;
    let j = 0;
    let lockAcq = 0;
    let lruDels = 0;
    let large = 0;
    // mem_cgroup_uncharge_folios counted as folios reach zero (same order as the freed list).
    let mc = -1;
    let batches = 0;
    let i = 0;
    try {
      for (; i < nr; i++) {
        const head = heads[i];
        const r = refs[i];
        let f = flags[head];
        const rc = refcount[head];
        if (
          (f & slowMask) === F_HEAD &&
          rc === r &&
          lruBatchEmpty &&
          mapcount[head] < 0 &&
          ((f & PG.anon) !== 0 || mapping[head] < 0)
        ) {
          // The common last reference to an unmapped order-0 folio: the general steps below with
          // each field read once and the lruvec counters in locals.
          refcount[head] = 0;
          if ((f & PG.lru) !== 0) {
            const l = oneNode ? f >>> MEMCG_SHIFT : this.lruvecOfHead(head);
            if (l !== lv) {
              lv = l;
              lockAcq++;
            }
            f &= ~(PG.lru | PG.active);
            flags[head] = f;
            lruFolios[l]--;
            lruPages[l]--;
            lruDels++;
          }
          const mg = f >>> MEMCG_SHIFT;
          if (mg !== mc) {
            mc = mg;
            batches++;
          }
          batchFree[j++] = head;
          continue;
        }
        if ((f & F_HEAD) === 0) this.checkHead(m, head);
        if (rc < r) fail("REFCOUNT_UNDERFLOW", m, `(${head}): dropping ${r} refs from refcount ${rc}`);
        const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
        // freeableFast, over the locals.
        if (
          rc === r &&
          ((f & (PG.locked | PG.writeback | PG.swapcache)) !== 0 ||
            (order === 0 ? mapcount[head] >= 0 : refcount[head + 1] >= 0) ||
            ((f & PG.anon) === 0 && mapping[head] >= 0) ||
            (!lruBatchEmpty && this.lruBatchHas(head)))
        )
          this.assertFreeable(m, head);
        refcount[head] = rc - r;
        if (rc !== r) continue;
        if (order !== 0) {
          large++;
          if (order >= 2) {
            this.unqueueDeferredSplit(head);
            f = flags[head];
          }
        }
        if ((f & PG.lru) !== 0) {
          const l = oneNode ? f >>> MEMCG_SHIFT : this.lruvecOfHead(head);
          if (l !== lv) {
            lv = l;
            lockAcq++;
          }
          // lruvecDel, over the locals.
          f &= ~(PG.lru | PG.active);
          flags[head] = f;
          lruFolios[l]--;
          lruPages[l] -= 1 << order;
          lruDels++;
        }
        if ((f & PG.mlocked) !== 0) this.clearStaleMlock(head);
        const mg = flags[head] >>> MEMCG_SHIFT;
        if (mg !== mc) {
          mc = mg;
          batches++;
        }
        batchFree[j++] = head;
      }
    } finally {
      // Entries [0, i) dropped their references (i < nr only when entry i threw).
      c.refcountAtomics += i;
      c.metadataLines += i;
      c.lruvecLockAcquisitions += lockAcq;
      c.lruDels += lruDels;
    }
    if (j === 0) return;
    c.freeListCalls++;
    c.memcgUnchargeBatches += batches;
    // free_unref_folios: pcp lock per zone change among pcp orders; others go to free_one_page.
    const pmdOrder = this.pmdOrder;
    let locked = -1;
    let pcpLocks = 0;
    if (large === 0) {
      // All order 0: count first (node only), then one free loop.
      if (oneNode) pcpLocks = 1;
      else
        for (let k = 0; k < j; k++) {
          const node = (batchFree[k] / this.nodeSpan) | 0;
          if (node !== locked) {
            locked = node;
            pcpLocks++;
          }
        }
      c.pcpLockAcquisitions += pcpLocks;
      this.freeOrder0List(batchFree, j);
      return;
    }
    // Each folio's flags are read once, before its free resets them.
    for (let k = 0; k < j; k++) {
      const head = batchFree[k];
      const order = (flags[head] >>> ORDER_SHIFT) & ORDER_MASK;
      if (order <= COSTLY_ORDER || order === pmdOrder) {
        const node = oneNode ? 0 : (head / this.nodeSpan) | 0;
        if (node !== locked) {
          locked = node;
          c.pcpLockAcquisitions++;
        }
      }
      this.freeToBuddy(head, order);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Page cache

  /** Create an address_space; returns its id (used as `folio->mapping`). */
  createAddressSpace(opts: AddressSpaceOptions): number {
    if (opts === null || typeof opts !== "object" || typeof opts.swapBacked !== "boolean")
      fail("EINVAL", "createAddressSpace", "opts.swapBacked must be a boolean");
    this.spaces.push({ swapBacked: opts.swapBacked, folios: new Map() });
    return this.spaces.length - 1;
  }

  private checkSpace(method: string, mapping: number): AddressSpace {
    if (!isInt(mapping) || mapping < 0 || mapping >= this.spaces.length)
      fail("EINVAL", method, `(${String(mapping)}): no such address_space`);
    return this.spaces[mapping];
  }

  private lookup(space: AddressSpace, index: number): number {
    for (let o = 0; o <= MAX_PAGE_ORDER; o++) {
      const base = index - (index & ((1 << o) - 1));
      const h = space.folios.get(base);
      if (h !== undefined) {
        const nr = 1 << ((this.flags[h] >>> ORDER_SHIFT) & ORDER_MASK);
        return index - base < nr ? h : -1;
      }
    }
    return -1;
  }

  /** `__filemap_add_folio`: insert at `index` (aligned to the folio size), taking folio_nr_pages references. */
  filemapAddFolio(mapping: number, head: number, index: number): void {
    const m = "filemapAddFolio";
    const space = this.checkSpace(m, mapping);
    this.checkHead(m, head);
    const f = this.flags[head];
    const nr = 1 << ((f >>> ORDER_SHIFT) & ORDER_MASK);
    if (!isInt(index) || index < 0 || index > 0x7fffffff - nr || (index & (nr - 1)) !== 0)
      fail(
        "EINVAL",
        m,
        `(${mapping}, ${head}, ${String(index)}): index must be a non-negative multiple of ${nr}`,
      );
    if ((f & PG.anon) !== 0) fail("BAD_STATE", m, `(${mapping}, ${head}): folio is anonymous`);
    if (this.mapping[head] >= 0)
      fail("BAD_STATE", m, `(${mapping}, ${head}): folio is already in mapping ${this.mapping[head]}`);
    if (this.folioMapcountRaw(head) !== 0) fail("BAD_STATE", m, `(${mapping}, ${head}): folio is mapped`);
    if (this.refcount[head] <= 0) fail("BAD_STATE", m, `(${mapping}, ${head}): folio has refcount 0`);
    if (this.lookup(space, index) !== -1)
      fail("BAD_STATE", m, `(${mapping}, ${head}, ${index}): index is occupied`);
    for (let i = index + 1; i < index + nr; i++)
      if (space.folios.has(i))
        fail("BAD_STATE", m, `(${mapping}, ${head}, ${index}): index ${i} is occupied`);
    const c = this.counters;
    c.pageCacheLockAcquisitions++;
    this.refcount[head] += nr;
    c.refcountAtomics++;
    c.metadataLines++;
    this.mapping[head] = mapping;
    this.index[head] = index;
    if (space.swapBacked) this.flags[head] = f | PG.swapbacked;
    space.folios.set(index, head);
    this.statMod(head, NodeStat.NR_FILE_PAGES, nr);
    if (space.swapBacked) this.statMod(head, NodeStat.NR_SHMEM, nr);
  }

  /** Page-cache lookup of the folio covering `index` (head pfn, -1 if none). Takes no reference. */
  filemapGetFolio(mapping: number, index: number): number {
    const space = this.checkSpace("filemapGetFolio", mapping);
    if (!isInt(index) || index < 0)
      fail("EINVAL", "filemapGetFolio", `(${mapping}, ${String(index)}): bad index`);
    return this.lookup(space, index);
  }

  /** `filemap_remove_folio` + `filemap_free_folio`: remove an unmapped folio and drop the cache's nr references. */
  filemapRemoveFolio(head: number): void {
    const m = "filemapRemoveFolio";
    this.checkHead(m, head);
    const f = this.flags[head];
    const id = this.mapping[head];
    if ((f & PG.anon) !== 0 || id < 0) fail("BAD_STATE", m, `(${head}): folio is not in the page cache`);
    if (this.folioMapcountRaw(head) !== 0) fail("BAD_STATE", m, `(${head}): folio is still mapped`);
    const nr = 1 << ((f >>> ORDER_SHIFT) & ORDER_MASK);
    const rc = this.refcount[head];
    if (rc < nr)
      fail("REFCOUNT_UNDERFLOW", m, `(${head}): page cache holds ${nr} refs but refcount is ${rc}`);
    const space = this.spaces[id];
    const c = this.counters;
    c.pageCacheLockAcquisitions++;
    space.folios.delete(this.index[head]);
    this.mapping[head] = -1;
    this.statMod(head, NodeStat.NR_FILE_PAGES, -nr);
    if (space.swapBacked) this.statMod(head, NodeStat.NR_SHMEM, -nr);
    if (rc === nr) this.assertFreeable(m, head);
    this.refcount[head] = rc - nr;
    c.refcountAtomics++;
    c.metadataLines++;
    if (rc === nr) this.releaseAtZero(head);
  }

  // ---------------------------------------------------------------------------------------------
  // Counters, invariants, digest

  /** Zero every counter. */
  resetCounters(): void {
    resetFolioCounters(this.counters);
  }

  /** Bytes of model state (all typed arrays; per pfn: 24). */
  stateBytes(): number {
    return (
      this.flags.byteLength +
      this.mapcount.byteLength +
      this.refcount.byteLength +
      this.mapping.byteLength +
      this.index.byteLength +
      this.priv.byteLength +
      this.freeHead.byteLength +
      this.freeBlocks.byteLength +
      this.lruFolios.byteLength +
      this.lruPages.byteLength +
      this.stats.byteLength +
      this.splitQueueLen.byteLength +
      this.lruBatch.byteLength +
      this.batchFree.byteLength
    );
  }

  /** Bytes of per-pfn state arrays divided by the number of page frames. */
  stateBytesPerPage(): number {
    return (
      (this.flags.byteLength +
        this.mapcount.byteLength +
        this.refcount.byteLength +
        this.mapping.byteLength +
        this.index.byteLength +
        this.priv.byteLength) /
      this.nrPages
    );
  }

  /** Folio-local consistency (mapcount arithmetic, tails, mapcount ≤ refcount). Returns pages mapped. */
  private checkFolio(method: string, head: number): number {
    const bad = (msg: string): never => fail("INVARIANT", method, `folio ${head}: ${msg}`);
    const f = this.flags[head];
    const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
    const nr = 1 << order;
    if ((head & (nr - 1)) !== 0) bad(`order ${order} folio is not naturally aligned`);
    const node = (head / this.nodeSpan) | 0;
    if (head + nr > this.nodeEnd(node)) bad("folio crosses a node boundary");
    if (order > this.pmdOrder) bad(`order ${order} exceeds the PMD order`);
    if (this.refcount[head] < 0) bad(`negative refcount ${this.refcount[head]}`);
    let ptePages = 0;
    let sum = 0;
    for (let i = 0; i < nr; i++) {
      const p = head + i;
      if (i > 0 && ((this.flags[p] & (F_TAIL | F_HEAD | F_FREE)) !== F_TAIL || this.priv[p] !== head))
        bad(`page ${p} is not a tail of this folio`);
      const v = this.mapcount[p];
      if (v < -1) bad(`page ${p} has negative mapcount ${v + 1}`);
      if (v >= 0) ptePages++;
      sum += v + 1;
    }
    let total = sum;
    let mapped = ptePages;
    if (order > 0) {
      const e = this.mapping[head + 1];
      if (e < -1) bad(`negative entire mapcount ${e + 1}`);
      if (e >= 0 && order !== this.pmdOrder) bad("entire mapping of a folio that is not PMD-sized");
      total += e + 1;
      const expectNpm = ptePages + (e >= 0 ? COMPOUND_MAPPED : 0);
      if (this.index[head + 1] !== expectNpm) bad(`_nr_pages_mapped ${this.index[head + 1]} != ${expectNpm}`);
      if (this.refcount[head + 1] + 1 !== total)
        bad(`_large_mapcount ${this.refcount[head + 1] + 1} != ${total}`);
      if (e >= 0) mapped = nr;
    }
    if (total > this.refcount[head]) bad(`mapcount ${total} exceeds refcount ${this.refcount[head]}`);
    if ((f & PG.deferredQueued) !== 0 && order < 2) bad("order < 2 folio on the deferred-split queue");
    if ((f & PG.partiallyMapped) !== 0 && (f & PG.deferredQueued) === 0)
      bad("partially_mapped but not queued");
    return mapped;
  }

  /** O(nrPages) check of every invariant; throws FolioError('INVARIANT') naming the broken rule. */
  checkInvariants(): void {
    const m = "checkInvariants";
    const bad = (msg: string): never => fail("INVARIANT", m, msg);
    const stats = new Int32Array(this.stats.length);
    const lruF = new Int32Array(this.nrLruvecs);
    const lruP = new Int32Array(this.nrLruvecs);
    const sq = new Int32Array(this.nrMemcgs);
    const blocks = new Int32Array(this.freeBlocks.length);
    let freePages = 0;
    let usedPages = 0;
    let pfn = 0;
    while (pfn < this.nrPages) {
      const f = this.flags[pfn];
      if ((f & F_BUDDY) !== 0) {
        const o = (f >>> ORDER_SHIFT) & ORDER_MASK;
        const size = 1 << o;
        const node = (pfn / this.nodeSpan) | 0;
        if ((pfn & (size - 1)) !== 0) bad(`free block ${pfn} of order ${o} is not aligned`);
        if (pfn + size > this.nodeEnd(node)) bad(`free block ${pfn} of order ${o} crosses its node's end`);
        for (let i = 1; i < size; i++)
          if (this.flags[pfn + i] !== F_FREE)
            bad(`page ${pfn + i} inside free block ${pfn} is not plain free`);
        for (let i = 0; i < size; i++)
          if (this.mapcount[pfn + i] !== -1) bad(`free page ${pfn + i} is mapped`);
        if (o < MAX_PAGE_ORDER) {
          const buddy = pfn ^ size;
          const bf = buddy < this.nrPages ? this.flags[buddy] : 0;
          if (
            buddy >= this.nodeStart(node) &&
            buddy + size <= this.nodeEnd(node) &&
            (bf & F_BUDDY) !== 0 &&
            ((bf >>> ORDER_SHIFT) & ORDER_MASK) === o
          )
            bad(`free buddies ${pfn} and ${buddy} of order ${o} were not merged`);
        }
        blocks[node * (MAX_PAGE_ORDER + 1) + o]++;
        freePages += size;
        pfn += size;
      } else if ((f & F_HEAD) !== 0) {
        const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
        const nr = 1 << order;
        if (pfn + nr > this.nrPages) bad(`folio ${pfn} runs past the end of memory`);
        const mapped = this.checkFolio(m, pfn);
        const lv = this.lruvecOfHead(pfn);
        const anon = (f & PG.anon) !== 0;
        stats[lv * NR_STAT_ITEMS + (anon ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED)] += mapped;
        if (order > 0 && this.mapping[pfn + 1] >= 0) stats[lv * NR_STAT_ITEMS + this.pmdStatItem(f)] += nr;
        if ((f & PG.lru) !== 0) {
          lruF[lv]++;
          lruP[lv] += nr;
        }
        if ((f & PG.deferredQueued) !== 0) sq[f >>> MEMCG_SHIFT]++;
        if (!anon && this.mapping[pfn] >= 0) {
          const id = this.mapping[pfn];
          const space = this.spaces[id];
          if (space === undefined || space.folios.get(this.index[pfn]) !== pfn)
            bad(`folio ${pfn} claims mapping ${id} index ${this.index[pfn]} but is not there`);
          if (this.refcount[pfn] < nr)
            bad(`page-cache folio ${pfn} has refcount ${this.refcount[pfn]} < ${nr}`);
          stats[lv * NR_STAT_ITEMS + NodeStat.NR_FILE_PAGES] += nr;
          if (space.swapBacked) stats[lv * NR_STAT_ITEMS + NodeStat.NR_SHMEM] += nr;
        }
        usedPages += nr;
        pfn += nr;
      } else {
        bad(`page ${pfn} is neither free nor part of a folio`);
      }
    }
    if (freePages + usedPages !== this.nrPages)
      bad(`free ${freePages} + used ${usedPages} != total ${this.nrPages}`);
    if (freePages !== this.nrFree) bad(`free pages ${freePages} != free counter ${this.nrFree}`);
    for (let k = 0; k < blocks.length; k++) {
      if (blocks[k] !== this.freeBlocks[k])
        bad(`free list ${k} counts ${this.freeBlocks[k]} blocks, memory has ${blocks[k]}`);
      const node = (k / (MAX_PAGE_ORDER + 1)) | 0;
      const o = k % (MAX_PAGE_ORDER + 1);
      let n = 0;
      let prev = -1;
      for (let p = this.freeHead[k]; p !== -1; p = this.refcount[p]) {
        const bf = this.flags[p];
        if (
          (bf & F_BUDDY) === 0 ||
          ((bf >>> ORDER_SHIFT) & ORDER_MASK) !== o ||
          ((p / this.nodeSpan) | 0) !== node
        )
          bad(`free list (node ${node}, order ${o}) holds ${p}, which is not such a free block`);
        if (this.mapping[p] !== prev)
          bad(`free list (node ${node}, order ${o}) has a broken prev link at ${p}`);
        prev = p;
        if (++n > blocks[k]) bad(`free list (node ${node}, order ${o}) is longer than its block count`);
      }
      if (n !== blocks[k]) bad(`free list (node ${node}, order ${o}) links ${n} of ${blocks[k]} blocks`);
    }
    for (let i = 0; i < stats.length; i++)
      if (stats[i] !== this.stats[i])
        bad(
          `lruvec ${(i / NR_STAT_ITEMS) | 0} stat ${i % NR_STAT_ITEMS} is ${this.stats[i]}, recomputed ${stats[i]}`,
        );
    for (let lv = 0; lv < this.nrLruvecs; lv++)
      if (lruF[lv] !== this.lruFolios[lv] || lruP[lv] !== this.lruPages[lv])
        bad(
          `lruvec ${lv} counts ${this.lruFolios[lv]} folios/${this.lruPages[lv]} pages, flags say ${lruF[lv]}/${lruP[lv]}`,
        );
    for (let i = 0; i < this.nrMemcgs; i++)
      if (sq[i] !== this.splitQueueLen[i])
        bad(`deferred-split queue of memcg ${i} has length ${this.splitQueueLen[i]}, flags say ${sq[i]}`);
    for (let id = 0; id < this.spaces.length; id++)
      for (const [index, head] of this.spaces[id].folios)
        if ((this.flags[head] & F_HEAD) === 0 || this.mapping[head] !== id || this.index[head] !== index)
          bad(`address_space ${id} index ${index} points to ${head}, which does not point back`);
    for (let i = 0; i < this.lruBatchNr; i++) {
      const h = this.lruBatch[i];
      if ((this.flags[h] & F_HEAD) === 0 || this.refcount[h] < 1)
        bad(`LRU-add batch holds ${h} without a reference`);
    }
    if (this.seriesCtx.active) bad("a folios_put_refs context is still open");
    for (let node = 0; node < this.nrNodes; node++) {
      let pages = 0;
      for (let l = 0; l < PCP_LISTS; l++)
        pages += this.pcpEntries[node * PCP_LISTS + l] << (l === PCP_LISTS - 1 ? this.pmdOrder : l);
      if (pages !== this.pcpCount[node] || pages > this.nrFree)
        bad(`pcp of node ${node} counts ${this.pcpCount[node]} pages, its lists hold ${pages}`);
    }
  }

  /**
   * Digest of the semantic state: pages, folios, LRU, queues, stats, page cache; not free-list order,
   * not counters. `ignoreFlags` (PG bits) are masked out of every flags word first, for comparisons
   * that deliberately disregard a bookkeeping flag (e.g. 7.x-only `PG.partiallyMapped`).
   */
  stateDigest(ignoreFlags = 0): string {
    let h1 = 0x811c9dc5;
    let h2 = 0x9e3779b9;
    const mix = (v: number): void => {
      h1 = Math.imul(h1 ^ v, 0x01000193);
      h2 = Math.imul(h2 ^ v, 0x85ebca6b) ^ (h2 >>> 13);
    };
    const keep = ~(ignoreFlags & PG_ALL_MASK);
    for (let pfn = 0; pfn < this.nrPages; pfn++) {
      const f = this.flags[pfn] & keep;
      mix(f);
      if ((f & F_FREE) !== 0) continue;
      mix(this.mapcount[pfn]);
      mix(this.refcount[pfn]);
      mix(this.mapping[pfn]);
      mix(this.index[pfn]);
      mix(this.priv[pfn]);
    }
    for (let i = 0; i < this.stats.length; i++) mix(this.stats[i]);
    for (let i = 0; i < this.nrLruvecs; i++) {
      mix(this.lruFolios[i]);
      mix(this.lruPages[i]);
    }
    for (let i = 0; i < this.nrMemcgs; i++) mix(this.splitQueueLen[i]);
    mix(this.lruBatchNr);
    for (let i = 0; i < this.lruBatchNr; i++) mix(this.lruBatch[i]);
    for (let id = 0; id < this.spaces.length; id++) {
      const keys = [...this.spaces[id].folios.keys()].sort((a, b) => a - b);
      mix(keys.length);
      for (const k of keys) {
        mix(k);
        mix(this.spaces[id].folios.get(k) as number);
      }
    }
    return (h1 >>> 0).toString(16).padStart(8, "0") + (h2 >>> 0).toString(16).padStart(8, "0");
  }
}

/** Create a physical memory of `config.nrPages` free page frames. */
export function createPhysMem(config: PhysMemConfig): PhysMem {
  return new PhysMem(config);
}
