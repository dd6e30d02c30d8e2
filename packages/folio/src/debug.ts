// Models: mm/debug.c and the VM_BUG_ON_FOLIO checks: a whole-state consistency checker, a canonical
// digest of the semantic state, and the model's own memory. Not on any teardown path.

import { COMPOUND_MAPPED, NodeStat, NR_STAT_ITEMS, PG, PG_ALL_MASK } from "./constants.js";
import { fail } from "./errors.js";
import { F_BUDDY, F_FREE, F_HEAD, F_TAIL, MEMCG_SHIFT, ORDER_MASK, ORDER_SHIFT } from "./layout.js";
import { lruvecOfHead, pmdStatItem } from "./lruvec.js";
import { type FolioState, nodeEnd, nodeStart, PCP_LISTS } from "./mm-types.js";

const MODULE = "debug";

/** Bytes of model state (all typed arrays; per pfn: 24). */
export function stateBytes(s: FolioState): number {
  return (
    s.flags.byteLength +
    s.mapcount.byteLength +
    s.refcount.byteLength +
    s.mapping.byteLength +
    s.index.byteLength +
    s.priv.byteLength +
    s.freeHead.byteLength +
    s.freeBlocks.byteLength +
    s.lruFolios.byteLength +
    s.lruPages.byteLength +
    s.stats.byteLength +
    s.splitQueueLen.byteLength +
    s.lruBatch.byteLength +
    s.mlockBatch.byteLength +
    (s.mlockCount?.byteLength ?? 0) +
    s.batchFree.byteLength
  );
}

/** Bytes of per-pfn state arrays divided by the number of page frames. */
export function stateBytesPerPage(s: FolioState): number {
  return (
    (s.flags.byteLength +
      s.mapcount.byteLength +
      s.refcount.byteLength +
      s.mapping.byteLength +
      s.index.byteLength +
      s.priv.byteLength) /
    s.nrPages
  );
}

/** Folio-local consistency (mapcount arithmetic, tails, mapcount ≤ refcount). Returns pages mapped. */
export function checkFolio(s: FolioState, method: string, head: number): number {
  const bad = (msg: string): never => fail("INVARIANT", MODULE, method, `folio ${head}: ${msg}`);
  const f = s.flags[head];
  const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
  const nr = 1 << order;
  if ((head & (nr - 1)) !== 0) bad(`order ${order} folio is not naturally aligned`);
  const node = (head / s.nodeSpan) | 0;
  if (head + nr > nodeEnd(s, node)) bad("folio crosses a node boundary");
  if (order > s.pmdOrder) bad(`order ${order} exceeds the PMD order`);
  if (s.refcount[head] < 0) bad(`negative refcount ${s.refcount[head]}`);
  let ptePages = 0;
  let sum = 0;
  for (let i = 0; i < nr; i++) {
    const p = head + i;
    if (i > 0 && ((s.flags[p] & (F_TAIL | F_HEAD | F_FREE)) !== F_TAIL || s.priv[p] !== head))
      bad(`page ${p} is not a tail of this folio`);
    const v = s.mapcount[p];
    if (v < -1) bad(`page ${p} has negative mapcount ${v + 1}`);
    if (v >= 0) ptePages++;
    sum += v + 1;
  }
  let total = sum;
  let mapped = ptePages;
  if (order > 0) {
    const e = s.entireMapcount[head + 1];
    if (e < -1) bad(`negative entire mapcount ${e + 1}`);
    if (e >= 0 && order !== s.pmdOrder) bad("entire mapping of a folio that is not PMD-sized");
    total += e + 1;
    const expectNpm = ptePages + (e >= 0 ? COMPOUND_MAPPED : 0);
    if (s.nrPagesMapped[head + 1] !== expectNpm)
      bad(`_nr_pages_mapped ${s.nrPagesMapped[head + 1]} != ${expectNpm}`);
    if (s.largeMapcount[head + 1] + 1 !== total)
      bad(`_large_mapcount ${s.largeMapcount[head + 1] + 1} != ${total}`);
    if (e >= 0) mapped = nr;
  }
  if (total > s.refcount[head]) bad(`mapcount ${total} exceeds refcount ${s.refcount[head]}`);
  if ((f & PG.deferredQueued) !== 0 && order < 2) bad("order < 2 folio on the deferred-split queue");
  if ((f & PG.partiallyMapped) !== 0 && (f & PG.deferredQueued) === 0) bad("partially_mapped but not queued");
  return mapped;
}

/** O(nrPages) check of every invariant; throws FolioError('INVARIANT') naming the broken rule. */
export function checkInvariants(s: FolioState): void {
  const m = "checkInvariants";
  const bad = (msg: string): never => fail("INVARIANT", MODULE, m, msg);
  const stats = new Int32Array(s.stats.length);
  const lruF = new Int32Array(s.nrLruvecs);
  const lruP = new Int32Array(s.nrLruvecs);
  const sq = new Int32Array(s.nrMemcgs);
  const blocks = new Int32Array(s.freeBlocks.length);
  let freePages = 0;
  let usedPages = 0;
  let pfn = 0;
  while (pfn < s.nrPages) {
    const f = s.flags[pfn];
    if ((f & F_BUDDY) !== 0) {
      const o = (f >>> ORDER_SHIFT) & ORDER_MASK;
      const size = 1 << o;
      const node = (pfn / s.nodeSpan) | 0;
      if ((pfn & (size - 1)) !== 0) bad(`free block ${pfn} of order ${o} is not aligned`);
      if (pfn + size > nodeEnd(s, node)) bad(`free block ${pfn} of order ${o} crosses its node's end`);
      for (let i = 1; i < size; i++)
        if (s.flags[pfn + i] !== F_FREE) bad(`page ${pfn + i} inside free block ${pfn} is not plain free`);
      for (let i = 0; i < size; i++) if (s.mapcount[pfn + i] !== -1) bad(`free page ${pfn + i} is mapped`);
      if (o < s.maxOrder) {
        const buddy = pfn ^ size;
        const bf = buddy < s.nrPages ? s.flags[buddy] : 0;
        if (
          buddy >= nodeStart(s, node) &&
          buddy + size <= nodeEnd(s, node) &&
          (bf & F_BUDDY) !== 0 &&
          ((bf >>> ORDER_SHIFT) & ORDER_MASK) === o
        )
          bad(`free buddies ${pfn} and ${buddy} of order ${o} were not merged`);
      }
      blocks[node * (s.maxOrder + 1) + o]++;
      freePages += size;
      pfn += size;
    } else if ((f & F_HEAD) !== 0) {
      const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
      const nr = 1 << order;
      if (pfn + nr > s.nrPages) bad(`folio ${pfn} runs past the end of memory`);
      const mapped = checkFolio(s, m, pfn);
      const lv = lruvecOfHead(s, pfn);
      const anon = (f & PG.anon) !== 0;
      stats[lv * NR_STAT_ITEMS + (anon ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED)] += mapped;
      if (order > 0 && s.entireMapcount[pfn + 1] >= 0) stats[lv * NR_STAT_ITEMS + pmdStatItem(f)] += nr;
      if ((f & PG.lru) !== 0) {
        lruF[lv]++;
        lruP[lv] += nr;
      }
      if ((f & PG.deferredQueued) !== 0) sq[f >>> MEMCG_SHIFT]++;
      if (!anon && s.mapping[pfn] >= 0) {
        const id = s.mapping[pfn];
        const space = s.spaces[id];
        if (space === undefined || space.folios.get(s.index[pfn]) !== pfn)
          bad(`folio ${pfn} claims mapping ${id} index ${s.index[pfn]} but is not there`);
        if (s.refcount[pfn] < nr) bad(`page-cache folio ${pfn} has refcount ${s.refcount[pfn]} < ${nr}`);
        stats[lv * NR_STAT_ITEMS + NodeStat.NR_FILE_PAGES] += nr;
        if (space.swapBacked) stats[lv * NR_STAT_ITEMS + NodeStat.NR_SHMEM] += nr;
      }
      usedPages += nr;
      pfn += nr;
    } else {
      bad(`page ${pfn} is neither free nor part of a folio`);
    }
  }
  if (freePages + usedPages !== s.nrPages) bad(`free ${freePages} + used ${usedPages} != total ${s.nrPages}`);
  if (freePages !== s.nrFree) bad(`free pages ${freePages} != free counter ${s.nrFree}`);
  for (let k = 0; k < blocks.length; k++) {
    if (blocks[k] !== s.freeBlocks[k])
      bad(`free list ${k} counts ${s.freeBlocks[k]} blocks, memory has ${blocks[k]}`);
    const node = (k / (s.maxOrder + 1)) | 0;
    const o = k % (s.maxOrder + 1);
    let n = 0;
    let prev = -1;
    for (let p = s.freeHead[k]; p !== -1; p = s.refcount[p]) {
      const bf = s.flags[p];
      if (
        (bf & F_BUDDY) === 0 ||
        ((bf >>> ORDER_SHIFT) & ORDER_MASK) !== o ||
        ((p / s.nodeSpan) | 0) !== node
      )
        bad(`free list (node ${node}, order ${o}) holds ${p}, which is not such a free block`);
      if (s.mapping[p] !== prev) bad(`free list (node ${node}, order ${o}) has a broken prev link at ${p}`);
      prev = p;
      if (++n > blocks[k]) bad(`free list (node ${node}, order ${o}) is longer than its block count`);
    }
    if (n !== blocks[k]) bad(`free list (node ${node}, order ${o}) links ${n} of ${blocks[k]} blocks`);
  }
  for (let i = 0; i < stats.length; i++)
    if (stats[i] !== s.stats[i])
      bad(
        `lruvec ${(i / NR_STAT_ITEMS) | 0} stat ${i % NR_STAT_ITEMS} is ${s.stats[i]}, recomputed ${stats[i]}`,
      );
  for (let lv = 0; lv < s.nrLruvecs; lv++)
    if (lruF[lv] !== s.lruFolios[lv] || lruP[lv] !== s.lruPages[lv])
      bad(
        `lruvec ${lv} counts ${s.lruFolios[lv]} folios/${s.lruPages[lv]} pages, flags say ${lruF[lv]}/${lruP[lv]}`,
      );
  for (let i = 0; i < s.nrMemcgs; i++)
    if (sq[i] !== s.splitQueueLen[i])
      bad(`deferred-split queue of memcg ${i} has length ${s.splitQueueLen[i]}, flags say ${sq[i]}`);
  for (let id = 0; id < s.spaces.length; id++)
    for (const [index, head] of s.spaces[id].folios)
      if ((s.flags[head] & F_HEAD) === 0 || s.mapping[head] !== id || s.index[head] !== index)
        bad(`address_space ${id} index ${index} points to ${head}, which does not point back`);
  for (let i = 0; i < s.lruBatchNr; i++) {
    const h = s.lruBatch[i];
    if ((s.flags[h] & F_HEAD) === 0 || s.refcount[h] < 1) bad(`LRU-add batch holds ${h} without a reference`);
  }
  if (s.seriesCtx.active) bad("a folios_put_refs context is still open");
  for (let node = 0; node < s.nrNodes; node++) {
    let pages = 0;
    for (let l = 0; l < PCP_LISTS; l++)
      pages += s.pcpEntries[node * PCP_LISTS + l] << (l === PCP_LISTS - 1 ? s.pmdOrder : l);
    // (Not "pages ≤ free pages": the lists are entry counts only and the allocation side, which would
    // take pages from them first, is not modelled — once memory runs out the counts outlive the pages.)
    if (pages !== s.pcpCount[node])
      bad(`pcp of node ${node} counts ${s.pcpCount[node]} pages, its lists hold ${pages}`);
  }
}

/**
 * Digest of the semantic state: pages, folios, LRU, queues, stats, page cache; not free-list order,
 * not counters. `ignoreFlags` (PG bits) are masked out of every flags word first, for comparisons
 * that deliberately disregard a bookkeeping flag (e.g. 7.x-only `PG.partiallyMapped`).
 */
export function stateDigest(s: FolioState, ignoreFlags = 0): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x9e3779b9;
  const mix = (v: number): void => {
    h1 = Math.imul(h1 ^ v, 0x01000193);
    h2 = Math.imul(h2 ^ v, 0x85ebca6b) ^ (h2 >>> 13);
  };
  const keep = ~(ignoreFlags & PG_ALL_MASK);
  for (let pfn = 0; pfn < s.nrPages; pfn++) {
    const f = s.flags[pfn] & keep;
    mix(f);
    if ((f & F_FREE) !== 0) continue;
    mix(s.mapcount[pfn]);
    mix(s.refcount[pfn]);
    mix(s.mapping[pfn]);
    mix(s.index[pfn]);
    mix(s.priv[pfn]);
  }
  for (let i = 0; i < s.stats.length; i++) mix(s.stats[i]);
  for (let i = 0; i < s.nrLruvecs; i++) {
    mix(s.lruFolios[i]);
    mix(s.lruPages[i]);
  }
  for (let i = 0; i < s.nrMemcgs; i++) mix(s.splitQueueLen[i]);
  mix(s.lruBatchNr);
  for (let i = 0; i < s.lruBatchNr; i++) mix(s.lruBatch[i]);
  for (let id = 0; id < s.spaces.length; id++) {
    const keys = [...s.spaces[id].folios.keys()].sort((a, b) => a - b);
    mix(keys.length);
    for (const k of keys) {
      mix(k);
      mix(s.spaces[id].folios.get(k) as number);
    }
  }
  return (h1 >>> 0).toString(16).padStart(8, "0") + (h2 >>> 0).toString(16).padStart(8, "0");
}
