// Models: struct mmu_gather_batch lists and their users in mm/mmu_gather.c — tlb_next_batch,
// __tlb_remove_page_size (v6.5), __tlb_remove_folio_pages_size (7.x), the series' range
// accumulation, tlb_flush_rmap_batch, tlb_batch_pages_flush, tlb_batch_list_free — and the
// free side in mm/swap_state.c (free_pages_and_swap_cache, free_folios_and_swap_cache).
// Omits: page poisoning / init_on_free page-count chunking (7.x), zone-device and huge-zero folios.

import type { PhysMem } from "@mmgather/folio";
import { FOLIO_BATCH_SIZE } from "@mmgather/folio";
import {
  type FolioState,
  folioHeadTrusted,
  folioNrPagesTrusted,
  folioRemoveRmapPtesTrusted,
  folioRemoveRmapRangeTrusted,
  folioState,
  foliosPutRefsDoOneTrusted,
  foliosPutRefsTrusted,
  pageRemoveRmapPteTrusted,
  releasePagesTrusted,
} from "@mmgather/folio/internal";
import type { SwapSpace } from "@mmgather/swapcache";
import {
  batchGeometry,
  ENCODED_PAGE_BIT_DELAY_RMAP,
  ENCODED_PAGE_BIT_NR_PAGES_NEXT,
  ENCODED_PAGE_SHIFT,
  MAX_NR_FOLIOS_PER_FREE,
} from "./constants.js";
import { GatherError } from "./errors.js";
import type { ForcedFlushReason, GatherCounters, GatherEvent, VariantName } from "./types.js";

/** What a storage needs from its gather. */
export interface StorageHost {
  readonly mem: PhysMem;
  readonly swap: SwapSpace | null;
  readonly counters: GatherCounters;
  /** Non-null when events are on. */
  readonly sink: ((e: GatherEvent) => void) | null;
  /** `tlb->delayed_rmap` (read and cleared by the encoded storages). */
  delayedRmap: boolean;
  readonly limitBatchesWhileDelayed: boolean;
  readonly lruAddDrainOnFree: boolean;
  /** `VariantPolicy.capBatchCount`. */
  readonly capBatchCount: boolean;
  /** `VariantPolicy.condReschedPerChunk`. */
  readonly condReschedPerChunk: boolean;
  /** The VMA being zapped is VM_LOCKED (rmap removals munlock). */
  readonly vmaLocked: boolean;
  /** The arch batches rmaps (contig-range pending walk is live). */
  readonly batchRmap: boolean;
  /** GFP_NOWAIT outcome for the next batch page; counts and emits. */
  tryAllocBatch(what: "pages" | "tables"): boolean;
}

const NO_RANGE = -1;

/** Common batch-list mechanics: `local` is batch 0, extra batches follow in allocation order. */
export abstract class BatchList {
  abstract readonly kind: VariantName;
  /** Entries used per batch. */
  readonly nr: number[] = [];
  /** Capacity per batch. */
  readonly max: number[] = [];
  /** Index of `tlb->active`. */
  active = 0;
  /** Extra batches allocated (`tlb->batch_count`). */
  batchCount = 0;
  readonly maxGatherBatch: number;
  readonly maxGatherBatchCount: number;
  /** Why the last `nextBatch` failed. */
  fullReason: ForcedFlushReason = "batchLimit";
  /** Set by the subclasses' run-queueing calls (`addRun`, `addSinglesRun`, `addRunHead`): their last page filled the gather. */
  runFull = false;
  protected readonly host: StorageHost;
  /** The folio layer's state, for its Trusted entry points. */
  protected readonly fs: FolioState;
  /** Decoded pfns of one free chunk (release_pages argument). */
  protected readonly scratchPfns = new Int32Array(MAX_NR_FOLIOS_PER_FREE + 1);
  protected readonly fbHeads = new Int32Array(FOLIO_BATCH_SIZE);
  protected readonly fbRefs = new Int32Array(FOLIO_BATCH_SIZE);

  constructor(host: StorageHost, kind: VariantName, pageShift: number) {
    this.host = host;
    this.fs = folioState(host.mem);
    const g = batchGeometry(kind, pageShift);
    this.maxGatherBatch = g.maxGatherBatch;
    this.maxGatherBatchCount = g.maxGatherBatchCount;
    this.nr.push(0);
    this.max.push(g.bundle);
  }

  /** Allocate the typed arrays of one batch with `max` entries. */
  protected abstract allocArrays(max: number): void;
  /** Drop the typed arrays of batch `b` (tlb_batch_list_free). */
  protected abstract dropArrays(b: number): void;
  /** Free entries [off, off+n) of batch b: one free_pages_and_swap_cache call. */
  protected abstract freeChunk(b: number, off: number, n: number): void;
  /** Entries of batch b from `off` that one chunk covers (≤ 512, pair-aware in 7.x). */
  protected chunkLen(_b: number, _off: number, remaining: number): number {
    return Math.min(remaining, MAX_NR_FOLIOS_PER_FREE);
  }
  /** Hook run on every batch switch (range_limit reset in contig-range). */
  protected onBatchSwitch(): void {}
  /** Hook run after all pages are freed. */
  protected onPagesFlushed(): void {}
  /** Pages held by the entries (sum of nr). */
  abstract queuedPages(): number;
  /** `tlb_flush_rmaps` storage walk; returns rmap calls made. */
  abstract flushRmaps(): number;
  /** `tlb_discard_rmaps` (series). */
  discardRmaps(): void {}

  /** Allocate the on-stack bundle arrays. Called once by subclasses. */
  protected initLocal(): void {
    this.allocArrays(this.max[0]);
  }

  queuedEntries(): number {
    let n = 0;
    for (let b = 0; b < this.nr.length; b++) n += this.nr[b];
    return n;
  }

  /** `tlb_next_batch`. */
  protected nextBatch(): boolean {
    const host = this.host;
    if (host.limitBatchesWhileDelayed && host.delayedRmap && this.active !== 0) {
      this.fullReason = "delayedRmapLimit";
      return false;
    }
    if (this.active + 1 < this.nr.length) {
      this.active++;
      host.counters.batchPagesReused++;
      if (host.sink !== null) host.sink({ type: "batchReused" });
      this.onBatchSwitch();
      return true;
    }
    if (host.capBatchCount && this.batchCount === this.maxGatherBatchCount) {
      this.fullReason = "batchLimit";
      return false;
    }
    if (!host.tryAllocBatch("pages")) {
      this.fullReason = "batchAllocFailed";
      return false;
    }
    this.batchCount++;
    this.nr.push(0);
    this.max.push(this.maxGatherBatch);
    this.allocArrays(this.maxGatherBatch);
    this.active++;
    host.counters.batchPagesAllocated++;
    if (host.sink !== null) host.sink({ type: "batchAllocated", what: "pages", batchCount: this.batchCount });
    this.onBatchSwitch();
    return true;
  }

  /** `tlb_batch_pages_flush`: ≤ 512 entries per call, a cond_resched after each (`condReschedPerChunk`). */
  pagesFlush(): void {
    const c = this.host.counters;
    const sink = this.host.sink;
    const resched = this.host.condReschedPerChunk;
    for (let b = 0; b < this.nr.length && this.nr[b] > 0; b++) {
      let off = 0;
      let remaining = this.nr[b];
      do {
        const n = this.chunkLen(b, off, remaining);
        this.freeChunk(b, off, n);
        c.chunksFreed++;
        off += n;
        remaining -= n;
        if (resched) {
          c.condResched++;
          if (sink !== null) sink({ type: "condResched" });
        }
      } while (remaining > 0);
      this.nr[b] = 0;
    }
    this.active = 0;
    this.onPagesFlushed();
  }

  /** `tlb_batch_list_free`. */
  listFree(): void {
    const extra = this.nr.length - 1;
    for (let b = this.nr.length - 1; b >= 1; b--) this.dropArrays(b);
    this.nr.length = 1;
    this.max.length = 1;
    this.host.counters.batchPagesFreed += extra;
  }

  protected overflow(method: string): never {
    throw new GatherError(
      "BATCH_OVERFLOW",
      "storage",
      method,
      "queued into a full batch: the previous call reported full and the caller did not flush",
    );
  }

  /** free_swap_cache(folio) when swap is configured. */
  protected freeSwapCache(head: number): void {
    const swap = this.host.swap;
    if (swap !== null) {
      swap.freeSwapCache(head);
      this.host.counters.freeSwapCacheCalls++;
    }
  }

  protected lruAddDrain(): void {
    if (this.host.lruAddDrainOnFree) {
      this.host.mem.lruAddDrain();
      this.host.counters.lruAddDrain++;
    }
  }
}

/**
 * The two encoded storages (v6.5, 7.x): one Int32Array of `encoded_page` slots per batch, delayed
 * rmaps only in `local` and `active`. Only the decoding of a delayed entry differs.
 */
export abstract class EncodedStorage extends BatchList {
  readonly slots: Int32Array[] = [];

  protected allocArrays(max: number): void {
    this.slots.push(new Int32Array(max));
  }
  protected dropArrays(_b: number): void {
    this.slots.pop();
  }

  /** `tlb_flush_rmaps`: only `local` and `active` can hold delayed entries. */
  flushRmaps(): number {
    const host = this.host;
    if (!host.delayedRmap) return 0;
    let calls = this.flushRmapBatch(0);
    if (this.active !== 0) calls += this.flushRmapBatch(this.active);
    host.delayedRmap = false;
    return calls;
  }

  /** `tlb_flush_rmap_batch` over batch b's delayed entries; returns rmap calls made. */
  protected abstract flushRmapBatch(b: number): number;
}

/** v6.5: one Int32 slot per page, `pfn << 2 | DELAY_RMAP`. */
export class EncodedPageStorage extends EncodedStorage {
  readonly kind = "encoded-page" as const;

  constructor(host: StorageHost, pageShift: number) {
    super(host, "encoded-page", pageShift);
    this.initLocal();
  }

  /** `__tlb_remove_page_size` (v6.5). Returns true when full. */
  add(pfn: number, delay: boolean): boolean {
    const b = this.active;
    let n = this.nr[b];
    if (n >= this.max[b]) this.overflow("add");
    this.slots[b][n++] = (pfn << ENCODED_PAGE_SHIFT) | (delay ? ENCODED_PAGE_BIT_DELAY_RMAP : 0);
    this.nr[b] = n;
    const c = this.host.counters;
    c.entriesQueued++;
    c.pagesQueued++;
    if (n === this.max[b]) return !this.nextBatch();
    return false;
  }

  /**
   * {@link add}`(pfn + j, false)` for j = 0, 1, … < nr until one reports full, with the writes of a
   * batch in one loop. Returns the pages queued; `runFull` tells whether the last one filled.
   */
  addRun(pfn: number, nr: number): number {
    const c = this.host.counters;
    let done = 0;
    this.runFull = false;
    while (done < nr) {
      const b = this.active;
      const e = this.slots[b];
      let n = this.nr[b];
      const max = this.max[b];
      if (n >= max) this.overflow("add");
      let k = max - n;
      if (k > nr - done) k = nr - done;
      for (let j = 0; j < k; j++) e[n + j] = (pfn + done + j) << ENCODED_PAGE_SHIFT;
      n += k;
      this.nr[b] = n;
      c.entriesQueued += k;
      c.pagesQueued += k;
      done += k;
      if (n === max && !this.nextBatch()) {
        this.runFull = true;
        return done;
      }
    }
    return done;
  }

  queuedPages(): number {
    return this.queuedEntries();
  }

  // v6.5 page_remove_rmap per page; the 7.x walk below decodes nr_pages pairs and calls
  // folio_remove_rmap_ptes: kept apart as the kernels differ (primitive, counters, event).
  protected flushRmapBatch(b: number): number {
    const e = this.slots[b];
    const n = this.nr[b];
    const fs = this.fs;
    const c = this.host.counters;
    const sink = this.host.sink;
    let calls = 0;
    for (let i = 0; i < n; i++) {
      const v = e[i];
      if ((v & ENCODED_PAGE_BIT_DELAY_RMAP) !== 0) {
        const pfn = v >>> ENCODED_PAGE_SHIFT;
        pageRemoveRmapPteTrusted(fs, folioHeadTrusted(fs, pfn), pfn, this.host.vmaLocked);
        // The kernel leaves the bit set (the entry is freed before the next rmap flush can run);
        // clearing it makes a repeated flush a no-op instead of a double removal.
        e[i] = v & ~ENCODED_PAGE_BIT_DELAY_RMAP;
        calls++;
        c.rmapCallsDelayed++;
        c.rmapPages++;
        if (sink !== null)
          sink({ type: "rmapRemoved", pfn, nr: 1, delayed: true, primitive: "pageRemoveRmap" });
      }
    }
    return calls;
  }

  /** v6.5 free_pages_and_swap_cache: lru_add_drain, free_swap_cache per page, release_pages. */
  protected freeChunk(b: number, off: number, n: number): void {
    const e = this.slots[b];
    const fs = this.fs;
    const pfns = this.scratchPfns;
    this.lruAddDrain();
    const swap = this.host.swap !== null;
    for (let i = 0; i < n; i++) {
      const pfn = e[off + i] >>> ENCODED_PAGE_SHIFT;
      pfns[i] = pfn;
      if (swap) this.freeSwapCache(folioHeadTrusted(fs, pfn));
    }
    const sink = this.host.sink;
    if (sink !== null) {
      const list: number[] = [];
      const nrs: number[] = [];
      for (let i = 0; i < n; i++) {
        list.push(pfns[i]);
        nrs.push(1);
      }
      sink({ type: "pagesFreed", pfns: list, nrs });
    }
    releasePagesTrusted(fs, pfns, 0, n);
    this.host.counters.releaseCalls++;
    this.host.counters.pagesReleased += n;
  }
}

/** 7.x: single pages in one slot, N pages of one folio in two (page|NR_PAGES_NEXT, nr << 2). */
export class EncodedNrPagesStorage extends EncodedStorage {
  readonly kind = "encoded-nr-pages" as const;

  constructor(host: StorageHost, pageShift: number) {
    super(host, "encoded-nr-pages", pageShift);
    this.initLocal();
  }

  /** `__tlb_remove_folio_pages_size` (7.x). Returns true when full. */
  add(pfn: number, nrPages: number, delay: boolean): boolean {
    const b = this.active;
    const e = this.slots[b];
    let n = this.nr[b];
    const flags = delay ? ENCODED_PAGE_BIT_DELAY_RMAP : 0;
    const c = this.host.counters;
    if (nrPages === 1) {
      if (n + 1 > this.max[b]) this.overflow("add");
      e[n++] = (pfn << ENCODED_PAGE_SHIFT) | flags;
      c.entriesQueued++;
    } else {
      if (n + 2 > this.max[b]) this.overflow("add");
      e[n++] = (pfn << ENCODED_PAGE_SHIFT) | flags | ENCODED_PAGE_BIT_NR_PAGES_NEXT;
      e[n++] = nrPages << ENCODED_PAGE_SHIFT;
      c.entriesQueued += 2;
    }
    c.pagesQueued += nrPages;
    this.nr[b] = n;
    // Keep room for another page + nr_pages pair.
    if (n >= this.max[b] - 1) return !this.nextBatch();
    return false;
  }

  /**
   * {@link add}`(pfns[j], 1, false)` for j = 0, 1, … < nr until one reports full, with the single-slot
   * writes of a batch in one loop. Returns the pages queued; `runFull` tells whether the last one
   * filled.
   */
  addSinglesRun(pfns: Int32Array, nr: number): number {
    const c = this.host.counters;
    let done = 0;
    this.runFull = false;
    while (done < nr) {
      const b = this.active;
      const e = this.slots[b];
      let n = this.nr[b];
      const max = this.max[b];
      if (n + 1 > max) this.overflow("add");
      // add() reports the batch done once n reaches max - 1: that many pages fit before the switch.
      let k = max - 1 - n;
      if (k < 1) k = 1;
      if (k > nr - done) k = nr - done;
      for (let j = 0; j < k; j++) e[n + j] = pfns[done + j] << ENCODED_PAGE_SHIFT;
      n += k;
      this.nr[b] = n;
      c.entriesQueued += k;
      c.pagesQueued += k;
      done += k;
      if (n >= max - 1 && !this.nextBatch()) {
        this.runFull = true;
        return done;
      }
    }
    return done;
  }

  queuedPages(): number {
    let pages = 0;
    for (let b = 0; b < this.nr.length; b++) {
      const e = this.slots[b];
      for (let i = 0; i < this.nr[b]; i++) {
        if ((e[i] & ENCODED_PAGE_BIT_NR_PAGES_NEXT) !== 0) pages += e[++i] >>> ENCODED_PAGE_SHIFT;
        else pages++;
      }
    }
    return pages;
  }

  protected flushRmapBatch(b: number): number {
    const e = this.slots[b];
    const fs = this.fs;
    const n = this.nr[b];
    const c = this.host.counters;
    const sink = this.host.sink;
    let calls = 0;
    for (let i = 0; i < n; i++) {
      const v = e[i];
      if ((v & ENCODED_PAGE_BIT_DELAY_RMAP) !== 0) {
        const pfn = v >>> ENCODED_PAGE_SHIFT;
        const at = i;
        let nrPages = 1;
        if ((v & ENCODED_PAGE_BIT_NR_PAGES_NEXT) !== 0) nrPages = e[++i] >>> ENCODED_PAGE_SHIFT;
        folioRemoveRmapPtesTrusted(fs, folioHeadTrusted(fs, pfn), pfn, nrPages, this.host.vmaLocked);
        e[at] = v & ~ENCODED_PAGE_BIT_DELAY_RMAP;
        calls++;
        c.rmapCallsDelayed++;
        c.rmapPages += nrPages;
        if (sink !== null)
          sink({ type: "rmapRemoved", pfn, nr: nrPages, delayed: true, primitive: "folioRemoveRmapPtes" });
      }
    }
    return calls;
  }

  /** A chunk never splits a page from its nr_pages slot. */
  protected override chunkLen(b: number, off: number, remaining: number): number {
    let n = Math.min(remaining, MAX_NR_FOLIOS_PER_FREE);
    if ((this.slots[b][off + n - 1] & ENCODED_PAGE_BIT_NR_PAGES_NEXT) !== 0) n++;
    return n;
  }

  /** 7.x free_pages_and_swap_cache: free_swap_cache per folio entry, folios_put_refs per 31 folios. */
  protected freeChunk(b: number, off: number, n: number): void {
    const e = this.slots[b];
    const fs = this.fs;
    const heads = this.fbHeads;
    const refs = this.fbRefs;
    const c = this.host.counters;
    const sink = this.host.sink;
    const list: number[] | null = sink !== null ? [] : null;
    const nrs: number[] | null = sink !== null ? [] : null;
    this.lruAddDrain();
    const swap = this.host.swap !== null;
    let fb = 0;
    // pagesReleased of the entries gathered so far, added before each folios_put_refs call.
    let released = 0;
    const end = off + n;
    for (let i = off; i < end; i++) {
      const v = e[i];
      const pfn = v >>> ENCODED_PAGE_SHIFT;
      const head = folioHeadTrusted(fs, pfn);
      if (swap) this.freeSwapCache(head);
      let r = 1;
      if ((v & ENCODED_PAGE_BIT_NR_PAGES_NEXT) !== 0) r = e[++i] >>> ENCODED_PAGE_SHIFT;
      heads[fb] = head;
      refs[fb] = r;
      fb++;
      released += r;
      if (list !== null && nrs !== null) {
        list.push(pfn);
        nrs.push(r);
      }
      if (fb === FOLIO_BATCH_SIZE) {
        c.pagesReleased += released;
        released = 0;
        foliosPutRefsTrusted(fs, heads, refs, fb);
        c.releaseCalls++;
        fb = 0;
      }
    }
    c.pagesReleased += released;
    if (sink !== null && list !== null && nrs !== null) sink({ type: "pagesFreed", pfns: list, nrs });
    if (fb > 0) {
      foliosPutRefsTrusted(fs, heads, refs, fb);
      c.releaseCalls++;
    }
  }
}

/** The series v2: `[start, end)` pfn ranges, never crossing a folio, in two Int32Arrays per batch. */
export class ContigRangeStorage extends BatchList {
  readonly kind = "contig-range" as const;
  readonly starts: Int32Array[] = [];
  readonly ends: Int32Array[] = [];
  /** `tlb->range_limit`: pfn one past the open range's folio, or NO_RANGE (ULONG_MAX). */
  rangeLimit = NO_RANGE;
  /** `tlb->rmap_pend` (batch index) and `tlb->rmap_pend_first`. */
  rmapPend = 0;
  rmapPendFirst = 0;

  constructor(host: StorageHost, pageShift: number) {
    super(host, "contig-range", pageShift);
    this.initLocal();
  }
  protected allocArrays(max: number): void {
    this.starts.push(new Int32Array(max));
    this.ends.push(new Int32Array(max));
  }
  protected dropArrays(_b: number): void {
    this.starts.pop();
    this.ends.pop();
  }
  protected override onBatchSwitch(): void {
    this.rangeLimit = NO_RANGE;
  }
  protected override onPagesFlushed(): void {
    this.rangeLimit = NO_RANGE;
    this.discardRmaps();
  }

  /** Series `__tlb_remove_page_size`: extend the open range or start one. Returns true when full. */
  add(pfn: number): boolean {
    return this.addHead(pfn, -1);
  }

  /**
   * {@link add} for a caller holding `head`, the live folio of `pfn` (the zap walk read both from a
   * present PTE); -1 looks it up (checked) when a new range starts.
   */
  addHead(pfn: number, head: number): boolean {
    const b = this.active;
    let n = this.nr[b];
    const ends = this.ends[b];
    const c = this.host.counters;
    let idx: number;
    if (this.rangeLimit !== NO_RANGE && pfn === ends[n - 1]) {
      idx = n - 1;
      ends[idx] = pfn + 1;
      c.rangesMerged++;
    } else {
      if (n >= this.max[b]) this.overflow("add");
      const mem = this.host.mem;
      const fs = this.fs;
      const h = head >= 0 ? head : mem.folioHead(pfn);
      idx = n++;
      this.starts[b][idx] = pfn;
      ends[idx] = pfn + 1;
      this.nr[b] = n;
      this.rangeLimit = h + folioNrPagesTrusted(fs, h);
      c.entriesQueued++;
    }
    c.pagesQueued++;
    if (ends[idx] === this.rangeLimit) this.rangeLimit = NO_RANGE;
    // The batch moves on as soon as its last slot is started.
    if (n === this.max[b]) return !this.nextBatch();
    return false;
  }

  /**
   * {@link addHead}`(pfn + j, head)` for j = 0, 1, … < nr (all in `head`'s folio) until one reports
   * full; pages that extend the open range are merged in one step. Returns the pages queued;
   * `runFull` tells whether the last one filled.
   */
  addRunHead(pfn: number, head: number, nr: number): number {
    const c = this.host.counters;
    let done = 0;
    this.runFull = false;
    while (done < nr) {
      const p = pfn + done;
      const b = this.active;
      const n = this.nr[b];
      const lim = this.rangeLimit;
      if (lim !== NO_RANGE && n > 0 && p === this.ends[b][n - 1]) {
        // Merges never fill a batch; the open range closes at its folio's end.
        let k = lim - p;
        if (k > nr - done) k = nr - done;
        const end = p + k;
        this.ends[b][n - 1] = end;
        c.rangesMerged += k;
        c.pagesQueued += k;
        if (end === lim) this.rangeLimit = NO_RANGE;
        done += k;
        continue;
      }
      done++;
      if (this.addHead(p, head)) {
        this.runFull = true;
        return done;
      }
    }
    return done;
  }

  queuedPages(): number {
    let pages = 0;
    for (let b = 0; b < this.nr.length; b++) {
      const s = this.starts[b];
      const e = this.ends[b];
      for (let i = 0; i < this.nr[b]; i++) pages += e[i] - s[i];
    }
    return pages;
  }

  /**
   * `tlb_discard_rmaps`: nothing queued so far is pending. Also closes the open range (the kernel
   * reaches discard only with it closed; closing keeps a misplaced call from hiding pages).
   */
  override discardRmaps(): void {
    this.rmapPend = this.active;
    this.rmapPendFirst = this.nr[this.active];
    this.rangeLimit = NO_RANGE;
  }

  /** `tlb_flush_rmaps` (series): every range from the marker to the end of the queue. */
  flushRmaps(): number {
    if (!this.host.batchRmap) return 0;
    let calls = this.flushRmapBatch(this.rmapPend, this.rmapPendFirst);
    for (let b = this.rmapPend + 1; b < this.nr.length && this.nr[b] > 0; b++)
      calls += this.flushRmapBatch(b, 0);
    this.discardRmaps();
    return calls;
  }

  private flushRmapBatch(b: number, first: number): number {
    const s = this.starts[b];
    const e = this.ends[b];
    const n = this.nr[b];
    const fs = this.fs;
    const c = this.host.counters;
    const sink = this.host.sink;
    for (let i = first; i < n; i++) {
      const pfn = s[i];
      const nrPages = e[i] - pfn;
      folioRemoveRmapRangeTrusted(fs, folioHeadTrusted(fs, pfn), pfn, nrPages, this.host.vmaLocked);
      c.rmapCallsDelayed++;
      c.rmapPages += nrPages;
      if (sink !== null)
        sink({ type: "rmapRemoved", pfn, nr: nrPages, delayed: true, primitive: "folioRemoveRmapRange" });
    }
    return n > first ? n - first : 0;
  }

  /** free_folios_and_swap_cache: lru_add_drain, free_swap_cache per range, folios_put_refs helpers. */
  protected freeChunk(b: number, off: number, n: number): void {
    const s = this.starts[b];
    const e = this.ends[b];
    const mem = this.host.mem;
    const fs = this.fs;
    const c = this.host.counters;
    const sink = this.host.sink;
    this.lruAddDrain();
    const end = off + n;
    if (this.host.swap !== null)
      for (let i = off; i < end; i++) this.freeSwapCache(folioHeadTrusted(fs, s[i]));
    if (sink !== null) {
      const list: number[] = [];
      const nrs: number[] = [];
      for (let i = off; i < end; i++) {
        list.push(s[i]);
        nrs.push(e[i] - s[i]);
      }
      sink({ type: "pagesFreed", pfns: list, nrs });
    }
    mem.foliosPutRefsInit();
    for (let i = off; i < end; i++) {
      const refs = e[i] - s[i];
      foliosPutRefsDoOneTrusted(fs, folioHeadTrusted(fs, s[i]), refs);
      c.pagesReleased += refs;
    }
    mem.foliosPutRefsComplete();
    c.releaseCalls++;
  }
}
