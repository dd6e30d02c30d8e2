// Models: physical memory as the Linux mm teardown path sees it, as one checked object: the facade
// over the model files, each named after the kernel file it models —
//   page-alloc.ts (mm/page_alloc.c, buddy side)   pcp.ts (mm/page_alloc.c, per-CPU free side)
//   folio.ts (include/linux/mm.h, page_ref.h)      mm-types.ts (struct page / struct folio)
//   rmap.ts (mm/rmap.c, 7.x)                       rmap-v6.5.ts (page_remove_rmap, Aug 2023)
//   rmap-series.ts (the 2023 series' folio_remove_rmap_range)
//   swap.ts (mm/swap.c, LRU and release)           huge-memory.ts (mm/huge_memory.c, deferred split)
//   lruvec.ts (mm_inline.h, memcontrol.h, vmstat) filemap.ts (mm/filemap.c)   debug.ts (mm/debug.c)
// Every public method validates its arguments and delegates to the function of the same name.
// Omits: see each model file.

import { MAX_PAGE_ORDER } from "./constants.js";
import { type FolioCounters, resetFolioCounters } from "./counters.js";
import { checkInvariants, stateBytes, stateBytesPerPage, stateDigest } from "./debug.js";
import { fail } from "./errors.js";
import {
  type AddressSpaceOptions,
  createAddressSpace,
  filemapAddFolio,
  filemapGetFolio,
  filemapRemoveFolio,
} from "./filemap.js";
import {
  entireMapcount,
  folioClear,
  folioGet,
  folioHead,
  folioIndex,
  folioMapcount,
  folioMapped,
  folioMapping,
  folioMemcg,
  folioNrPages,
  folioOrder,
  folioRef,
  folioRefAdd,
  folioRefSubAndTest,
  folioSet,
  folioSetAnon,
  folioSetSwap,
  folioSwap,
  folioTest,
  largeMapcount,
  nrPagesMapped,
  pageMapcount,
} from "./folio.js";
import { setDeferredSplitObserver, splitQueueLength } from "./huge-memory.js";
import { MAX_MEMCGS, ORDER_MASK } from "./layout.js";
import { lruvecNrFolios, lruvecNrPages, lruvecOf, lruvecStat, nodeStat } from "./lruvec.js";
import { mlockBatchRefs, mlockFolio } from "./mlock.js";
import {
  checkHead,
  copyFolioState,
  type DeferredSplitObserver,
  FolioState,
  type FreeObserver,
  folioStateOf,
  isInt,
  nodeEnd,
  nodeOf,
  nodeStart,
  type PcpPolicy,
  type RmapPolicy,
  registerFolioState,
} from "./mm-types.js";
import {
  type AllocOptions,
  allocFolio,
  freeBlockList,
  isFree,
  nrFreePages,
  seedFreeLists,
  setFreeObserver,
} from "./page-alloc.js";
import { folioAddRmapPmd, folioAddRmapPtes, folioRemoveRmapPmd, folioRemoveRmapPtes } from "./rmap.js";
import { folioRemoveRmapRange } from "./rmap-series.js";
import { pageRemoveRmap } from "./rmap-v6.5.js";
import {
  folioAddLru,
  folioIsolateLru,
  folioPut,
  foliosPutRefs,
  foliosPutRefsComplete,
  foliosPutRefsDoOne,
  foliosPutRefsInit,
  freeFolio,
  lruAddBatchCount,
  lruAddDrain,
  releasePages,
} from "./swap.js";

const MODULE = "phys-mem";

/** The largest order the per-pfn flags word can hold (ORDER_MASK). */
const MAX_ORDER_LIMIT = ORDER_MASK;

/** Configuration of {@link createPhysMem}. */
export interface PhysMemConfig {
  /** Number of page frames (of 2^`pageShift` bytes each). */
  nrPages: number;
  /** NUMA nodes, splitting the pfn range into equal contiguous spans (default 1). */
  nrNodes?: number;
  /** Memory cgroups (default 1): one lruvec per (node, memcg), one deferred-split queue per memcg. */
  nrMemcgs?: number;
  /** Order of a PMD-sized folio (default 9: 2 MiB on x86_64; 8 on s390; arm64 11 with 16 KiB pages, 13 with 64 KiB). */
  pmdOrder?: number;
  /**
   * `PAGE_SHIFT` (default 12: 4 KiB pages; 12..16). Sizes the modelled zone in pages: its pcp batch
   * and high (`pcpZoneSizes`); nothing else in this package depends on the page size.
   */
  pageShift?: number;
  /**
   * Highest buddy order, `MAX_PAGE_ORDER` (default the larger of {@link MAX_PAGE_ORDER} and `pmdOrder`,
   * as arm64's ARCH_FORCE_MAX_ORDER makes it: 10, 11 with 16 KiB pages, 13 with 64 KiB). At least
   * `pmdOrder`, at most 15.
   */
  maxPageOrder?: number;
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
  /**
   * Deferred-split rule of `folio_remove_rmap_*` (default "v6.18"; see {@link RmapPolicy}). Like
   * `pcpPolicy`, a property of the kernel the machine runs.
   */
  rmapPolicy?: RmapPolicy;
}

/** Physical memory: page frames, folios, rmap, LRU, page cache and their exact counters. */
export class PhysMem {
  readonly nrPages: number;
  readonly nrNodes: number;
  readonly nrMemcgs: number;
  readonly pmdOrder: number;
  /** `PAGE_SHIFT` of the page frames. */
  readonly pageShift: number;
  /** Highest buddy order (`MAX_PAGE_ORDER`). */
  readonly maxPageOrder: number;
  readonly nrLruvecs: number;
  /** Pages per node span (the last node may be shorter). */
  readonly nodeSpan: number;
  /** Exact primitive counters (see {@link FolioCounters}). */
  readonly counters: FolioCounters;
  private readonly s: FolioState;

  constructor(config: PhysMemConfig) {
    const m = "createPhysMem";
    if (typeof config !== "object" || config === null) fail("EINVAL", MODULE, m, "config must be an object");
    const { nrPages } = config;
    const nrNodes = config.nrNodes ?? 1;
    const nrMemcgs = config.nrMemcgs ?? 1;
    const pmdOrder = config.pmdOrder ?? 9;
    if (!isInt(nrPages) || nrPages < 1 || nrPages > 2 ** 30)
      fail("EINVAL", MODULE, m, `nrPages must be an integer in 1..2^30, got ${String(nrPages)}`);
    if (!isInt(nrNodes) || nrNodes < 1 || nrNodes > 64 || nrNodes > nrPages)
      fail("EINVAL", MODULE, m, `nrNodes must be an integer in 1..min(64, nrPages), got ${String(nrNodes)}`);
    if (!isInt(nrMemcgs) || nrMemcgs < 1 || nrMemcgs > MAX_MEMCGS)
      fail("EINVAL", MODULE, m, `nrMemcgs must be an integer in 1..${MAX_MEMCGS}, got ${String(nrMemcgs)}`);
    const pageShift = config.pageShift ?? 12;
    if (!isInt(pageShift) || pageShift < 12 || pageShift > 16)
      fail("EINVAL", MODULE, m, `pageShift must be an integer in 12..16, got ${String(pageShift)}`);
    if (!isInt(pmdOrder) || pmdOrder < 1 || pmdOrder > MAX_ORDER_LIMIT)
      fail(
        "EINVAL",
        MODULE,
        m,
        `pmdOrder must be an integer in 1..${MAX_ORDER_LIMIT}, got ${String(pmdOrder)}`,
      );
    const maxOrder = config.maxPageOrder ?? Math.max(MAX_PAGE_ORDER, pmdOrder);
    if (!isInt(maxOrder) || maxOrder < pmdOrder || maxOrder > MAX_ORDER_LIMIT)
      fail(
        "EINVAL",
        MODULE,
        m,
        `maxPageOrder must be an integer in ${pmdOrder}..${MAX_ORDER_LIMIT} (at least pmdOrder), got ${String(maxOrder)}`,
      );
    const pcpPolicy = config.pcpPolicy ?? "v6.5";
    if (pcpPolicy !== "v6.5" && pcpPolicy !== "v6.7")
      fail("EINVAL", MODULE, m, `pcpPolicy must be "v6.5" or "v6.7", got ${String(pcpPolicy)}`);
    const fhb = config.pcpFreeHighBatch ?? false;
    if (typeof fhb !== "boolean")
      fail("EINVAL", MODULE, m, `pcpFreeHighBatch must be a boolean, got ${String(fhb)}`);
    const rmapPolicy = config.rmapPolicy ?? "v6.18";
    if (rmapPolicy !== "v6.9" && rmapPolicy !== "v6.18")
      fail("EINVAL", MODULE, m, `rmapPolicy must be "v6.9" or "v6.18", got ${String(rmapPolicy)}`);
    const s = new FolioState({
      nrPages,
      nrNodes,
      nrMemcgs,
      pmdOrder,
      pageShift,
      maxOrder,
      pcpPolicy,
      pcpFreeHighBatch: fhb,
      rmapPolicy,
    });
    seedFreeLists(s);
    registerFolioState(this, s);
    this.s = s;
    this.nrPages = s.nrPages;
    this.nrNodes = s.nrNodes;
    this.nrMemcgs = s.nrMemcgs;
    this.pmdOrder = s.pmdOrder;
    this.pageShift = s.pageShift;
    this.maxPageOrder = s.maxOrder;
    this.nrLruvecs = s.nrLruvecs;
    this.nodeSpan = s.nodeSpan;
    this.counters = s.counters;
  }

  /** First pfn of `node`. */
  nodeStart(node: number): number {
    return nodeStart(this.s, node);
  }

  /** One past the last pfn of `node`. */
  nodeEnd(node: number): number {
    return nodeEnd(this.s, node);
  }

  /** Node of a pfn. */
  nodeOf(pfn: number): number {
    return nodeOf(this.s, pfn);
  }

  /**
   * `folio_alloc`: a naturally aligned folio of `order` pages from the buddy allocator, refcount 1,
   * unmapped, charged to `memcg`. Cache lines: every struct page of the folio (prep_compound_page)
   * plus one per buddy half put back on a free list.
   */
  allocFolio(order: number, opts?: AllocOptions): number {
    return allocFolio(this.s, order, opts);
  }

  /** `free_unref_page` / `__free_pages`: free a folio whose only remaining reference is the caller's (refcount 1), or 0. */
  freeFolio(head: number): void {
    freeFolio(this.s, head);
  }

  /** Register (or with null remove) the observer called whenever a folio is returned to the allocator. */
  setFreeObserver(fn: FreeObserver | null): void {
    setFreeObserver(this.s, fn);
  }

  /** True if `pfn` lies in a free buddy block. */
  isFree(pfn: number): boolean {
    return isFree(this.s, pfn);
  }

  /** Number of free page frames. */
  nrFreePages(): number {
    return nrFreePages(this.s);
  }

  /** Free buddy blocks as [pfn, order] pairs sorted by pfn (diagnostics and tests). */
  freeBlockList(): Array<[number, number]> {
    return freeBlockList(this.s);
  }

  /** `page_folio`: head pfn of the folio containing `pfn`. */
  folioHead(pfn: number): number {
    return folioHead(this.s, pfn);
  }

  /** `folio_order`. */
  folioOrder(head: number): number {
    return folioOrder(this.s, head);
  }

  /** `folio_nr_pages`. */
  folioNrPages(head: number): number {
    return folioNrPages(this.s, head);
  }

  /** Memcg the folio is charged to. */
  folioMemcg(head: number): number {
    return folioMemcg(this.s, head);
  }

  /** `folio_ref_count`. */
  folioRef(head: number): number {
    return folioRef(this.s, head);
  }

  /** `folio_get`: one atomic increment. */
  folioGet(head: number): void {
    folioGet(this.s, head);
  }

  /** `folio_ref_add(folio, nr)`: one atomic add. */
  folioRefAdd(head: number, nr: number): void {
    folioRefAdd(this.s, head, nr);
  }

  /** `folio_put`: one atomic decrement; at zero the folio is released through `__folio_put`. */
  folioPut(head: number): void {
    folioPut(this.s, head);
  }

  /** `folio_ref_sub_and_test`: one atomic subtract; true if it reached zero (the folio is NOT freed: call freeFolio). */
  folioRefSubAndTest(head: number, nr: number): boolean {
    return folioRefSubAndTest(this.s, head, nr);
  }

  /** PTE mapcount of one page (`_mapcount + 1`). */
  pageMapcount(pfn: number): number {
    return pageMapcount(this.s, pfn);
  }

  /** `folio_mapcount`: all PTE and PMD mappings of the folio (7.x: `_large_mapcount + 1`). */
  folioMapcount(head: number): number {
    return folioMapcount(this.s, head);
  }

  /** `folio_mapped`: small: `_mapcount >= 0`; large: `_nr_pages_mapped != 0`. */
  folioMapped(head: number): boolean {
    return folioMapped(this.s, head);
  }

  /** `folio_entire_mapcount` (`_entire_mapcount + 1`; 0 for small folios). */
  entireMapcount(head: number): number {
    return entireMapcount(this.s, head);
  }

  /** Raw `_nr_pages_mapped` (includes COMPOUND_MAPPED per entire mapping; 0 for small folios). */
  nrPagesMapped(head: number): number {
    return nrPagesMapped(this.s, head);
  }

  /** `folio_large_mapcount` (`_large_mapcount + 1`); for a small folio its `_mapcount + 1`. */
  largeMapcount(head: number): number {
    return largeMapcount(this.s, head);
  }

  /** `folio_test_*`. */
  folioTest(head: number, flag: number): boolean {
    return folioTest(this.s, head, flag);
  }

  /** `folio_set_*` for flags not owned by this package's primitives (lru, anon, swapbacked, deferred split are refused). */
  folioSet(head: number, flag: number): void {
    folioSet(this.s, head, flag);
  }

  /** `folio_clear_*` (same restrictions as {@link PhysMem.folioSet}). */
  folioClear(head: number, flag: number): void {
    folioClear(this.s, head, flag);
  }

  /** `folio->mapping` id (anon_vma id for anon folios, address_space id for page cache; -1 = none). */
  folioMapping(head: number): number {
    return folioMapping(this.s, head);
  }

  /** `folio->index`. */
  folioIndex(head: number): number {
    return folioIndex(this.s, head);
  }

  /** `folio->swap` (0 = none). */
  folioSwap(head: number): number {
    return folioSwap(this.s, head);
  }

  /** Set `folio->swap` (0 clears it). */
  folioSetSwap(head: number, entry: number): void {
    folioSetSwap(this.s, head, entry);
  }

  /** The anon half of `folio_add_new_anon_rmap`: mapping = anon_vma, index, PG_anon + PG_swapbacked. */
  folioSetAnon(head: number, anonVma: number, index: number): void {
    folioSetAnon(this.s, head, anonVma, index);
  }

  /** Node statistic in pages (summed over memcgs); without `node`, summed over all nodes. */
  nodeStat(item: number, node?: number): number {
    return nodeStat(this.s, item, node);
  }

  /** Statistic of one lruvec (node, memcg). */
  lruvecStat(lruvec: number, item: number): number {
    return lruvecStat(this.s, lruvec, item);
  }

  /** Folios on the deferred-split queue of `memcg` (all memcgs if omitted). */
  splitQueueLength(memcg?: number): number {
    return splitQueueLength(this.s, memcg);
  }

  /**
   * Register (or with null remove) the observer called whenever a folio is added to a deferred-split
   * queue, after the rmap removal that queued it has updated every mapcount.
   */
  setDeferredSplitObserver(fn: DeferredSplitObserver | null): void {
    setDeferredSplitObserver(this.s, fn);
  }

  /** 7.x `folio_add_{anon,file}_rmap_ptes(folio, page, nr)`: map `nr` pages starting at `pfn` by PTE. */
  folioAddRmapPtes(head: number, pfn: number, nr: number): void {
    folioAddRmapPtes(this.s, head, pfn, nr);
  }

  /** 7.x `folio_add_{anon,file}_rmap_pmd`: map a PMD-sized folio entirely. */
  folioAddRmapPmd(head: number): void {
    folioAddRmapPmd(this.s, head);
  }

  /**
   * 6.5 (mm-unstable Aug 2023) `page_remove_rmap(page, vma, compound)`: remove one PTE mapping of `pfn`,
   * or (compound) the PMD mapping of the folio headed by `pfn`.
   */
  pageRemoveRmap(pfn: number, compound: boolean, vmaLocked = false): void {
    pageRemoveRmap(this.s, pfn, compound, vmaLocked);
  }

  /** The 2023 series' `folio_remove_rmap_range(folio, page, nr, vma)`: remove `nr` PTE mappings inside one folio. */
  folioRemoveRmapRange(head: number, pfn: number, nr: number, vmaLocked = false): void {
    folioRemoveRmapRange(this.s, head, pfn, nr, vmaLocked);
  }

  /** 7.x `folio_remove_rmap_ptes(folio, page, nr, vma)` (CONFIG_PAGE_MAPCOUNT). */
  folioRemoveRmapPtes(head: number, pfn: number, nr: number, vmaLocked = false): void {
    folioRemoveRmapPtes(this.s, head, pfn, nr, vmaLocked);
  }

  /** 7.x `folio_remove_rmap_pmd(folio, page, vma)`. */
  folioRemoveRmapPmd(head: number, vmaLocked = false): void {
    folioRemoveRmapPmd(this.s, head, vmaLocked);
  }

  /** lruvec id (node × nrMemcgs + memcg) of a folio (`folio_lruvec`). */
  lruvecOf(head: number): number {
    return lruvecOf(this.s, head);
  }

  /** Pages on the LRU lists of `lruvec`. */
  lruvecNrPages(lruvec: number): number {
    return lruvecNrPages(this.s, lruvec);
  }

  /** Folios on the LRU lists of `lruvec`. */
  lruvecNrFolios(lruvec: number): number {
    return lruvecNrFolios(this.s, lruvec);
  }

  /** Folios waiting in the per-CPU LRU-add batch. */
  lruAddBatchCount(): number {
    return lruAddBatchCount(this.s);
  }

  /**
   * 6.5 `folio_add_lru`: take a reference for the per-CPU batch; move the batch to the LRU when it is
   * full (PAGEVEC_SIZE) or the folio is large.
   */
  folioAddLru(head: number): void {
    folioAddLru(this.s, head);
  }

  /**
   * `folio_isolate_lru`: take a folio off its LRU list with a reference for the isolator (PG_lru
   * cleared). False when it is not on one (in the LRU-add batch, or already isolated).
   */
  folioIsolateLru(head: number): boolean {
    return folioIsolateLru(this.s, head);
  }

  /** `lru_add_drain()`: move this CPU's LRU-add batch to the LRU and drain its mlock batch. */
  lruAddDrain(): void {
    lruAddDrain(this.s);
  }

  /** `mlock_folio`: a VM_LOCKED VMA maps `head` (PG_mlocked, mlock_count + 1). */
  mlockFolio(head: number): void {
    checkHead(this.s, "mlockFolio", head);
    mlockFolio(this.s, head);
  }

  /** The folio's mlock_count (VM_LOCKED VMAs mapping it). */
  mlockCount(head: number): number {
    checkHead(this.s, "mlockCount", head);
    return this.s.mlockCount?.[head] ?? 0;
  }

  /** References this CPU's mlock batch holds on `head` (released by the next `lruAddDrain`). */
  mlockBatchRefs(head: number): number {
    checkHead(this.s, "mlockBatchRefs", head);
    return mlockBatchRefs(this.s, head);
  }

  /**
   * 6.5 `release_pages(pages, nr)`: drop one reference per entry (entries are any pfn of a folio);
   * the lruvec lock is held across consecutive small LRU folios, dropped every SWAP_CLUSTER_MAX folios
   * processed and for every large folio (released by `__folio_put_large` with its own lock).
   */
  releasePages(pages: ArrayLike<number>, start: number, nr: number): void {
    releasePages(this.s, pages, start, nr);
  }

  /** The series' `__folios_put_refs_init(ctx)` (v2 4/5). One context may be open at a time. */
  foliosPutRefsInit(): void {
    foliosPutRefsInit(this.s);
  }

  /** The series' `__folios_put_refs_do_one(ctx, folio, refs)`: `folio_ref_sub_and_test(folio, refs)` and release. */
  foliosPutRefsDoOne(head: number, refs: number): void {
    foliosPutRefsDoOne(this.s, head, refs);
  }

  /** The series' `__folios_put_refs_complete(ctx)`. */
  foliosPutRefsComplete(): void {
    foliosPutRefsComplete(this.s);
  }

  /**
   * 7.x `folios_put_refs(folio_batch, refs)`: ≤ FOLIO_BATCH_SIZE folios, `refs[i]` references each; the
   * lruvec lock is held across the batch (relocked only on lruvec change); folios reaching zero, large
   * ones included, are dequeued from deferred split, taken off the LRU and freed together
   * (`mem_cgroup_uncharge_folios` + `free_unref_folios`).
   */
  foliosPutRefs(heads: ArrayLike<number>, refs: ArrayLike<number>, nr: number): void {
    foliosPutRefs(this.s, heads, refs, nr);
  }

  /** Create an address_space; returns its id (used as `folio->mapping`). */
  createAddressSpace(opts: AddressSpaceOptions): number {
    return createAddressSpace(this.s, opts);
  }

  /** `__filemap_add_folio`: insert at `index` (aligned to the folio size), taking folio_nr_pages references. */
  filemapAddFolio(mapping: number, head: number, index: number): void {
    filemapAddFolio(this.s, mapping, head, index);
  }

  /** Page-cache lookup of the folio covering `index` (head pfn, -1 if none). Takes no reference. */
  filemapGetFolio(mapping: number, index: number): number {
    return filemapGetFolio(this.s, mapping, index);
  }

  /** `filemap_remove_folio` + `filemap_free_folio`: remove an unmapped folio and drop the cache's nr references. */
  filemapRemoveFolio(head: number): void {
    filemapRemoveFolio(this.s, head);
  }

  /** Bytes of model state (all typed arrays; per pfn: 24). */
  stateBytes(): number {
    return stateBytes(this.s);
  }

  /** Bytes of per-pfn state arrays divided by the number of page frames. */
  stateBytesPerPage(): number {
    return stateBytesPerPage(this.s);
  }

  /** O(nrPages) check of every invariant; throws FolioError('INVARIANT') naming the broken rule. */
  checkInvariants(): void {
    checkInvariants(this.s);
  }

  /**
   * Digest of the semantic state: pages, folios, LRU, queues, stats, page cache; not free-list order,
   * not counters. `ignoreFlags` (PG bits) are masked out of every flags word first, for comparisons
   * that deliberately disregard a bookkeeping flag (e.g. 7.x-only `PG.partiallyMapped`).
   */
  stateDigest(ignoreFlags = 0): string {
    return stateDigest(this.s, ignoreFlags);
  }

  /**
   * Makes this memory an exact copy of `src` (a model facility, nothing the kernel does): every page
   * frame, the free lists and per-CPU lists, LRU, statistics, queues, page cache and counters. This
   * memory's free observer stays. The arrays are copied into this memory's own (typed-array copies, no
   * per-page object), so one memory can take copy after copy. `src` must have the same geometry and
   * policies (EINVAL otherwise). Used to run several experiments from one built state.
   */
  copyFrom(src: PhysMem): void {
    const t = src instanceof PhysMem ? folioStateOf(src) : undefined;
    if (t === undefined) fail("EINVAL", MODULE, "copyFrom", "src must be a PhysMem from createPhysMem");
    copyFolioState(this.s, t);
  }

  /** Zero every counter. */
  resetCounters(): void {
    resetFolioCounters(this.s.counters);
  }
}

/** Create a physical memory of `config.nrPages` free page frames. */
export function createPhysMem(config: PhysMemConfig): PhysMem {
  return new PhysMem(config);
}
