// Models: the consistency rules between swap_map, the swap cache and the folio side that
// mm/swapfile.c and mm/swap_state.c keep (and VM_BUG_ON where the kernel checks them), as one checker,
// plus a digest of the semantic state. Not a kernel file: the checker of the two above.

import { PG } from "@mmgather/folio";
import {
  SWAP_HAS_CACHE,
  SWAP_MAP_BAD,
  SWAP_MAP_MAX,
  SWAPFILE_CLUSTER,
  SWP_OFFSET_BITS,
  SWP_OFFSET_MASK,
} from "./entry.js";
import { SwapError } from "./errors.js";
import { COUNT_MASK, type SwapState, slotsInUse } from "./state.js";
import type { SwapDevice } from "./swap-device.js";

function broken(msg: string): never {
  throw new SwapError("INVARIANT", "invariants", "checkInvariants", msg);
}

/**
 * Throws SwapError('INVARIANT') naming the first broken rule: header slots bad and uncached; counts
 * within 0..SWAP_MAP_MAX; SWAP_HAS_CACHE iff the swap cache holds a folio for the slot, and that folio is
 * allocated, has PG_swapcache, folio->swap covering the slot (naturally aligned, every slot of its range
 * pointing back at it) and at least nr references; per-cluster and per-device free counts match the map.
 */
export function checkSwapInvariants(s: SwapState): void {
  for (let t = 0; t < s.devs.length; t++) {
    const d = s.devs[t]!;
    const map = d.map;
    const cache = d.cache;
    if (map[0] !== SWAP_MAP_BAD || cache[0] !== -1) {
      broken(
        `device ${t}: header slot 0 must be SWAP_MAP_BAD and uncached (map ${map[0]}, cache ${cache[0]})`,
      );
    }
    let free = 0;
    let clusterFree = 0;
    for (let o = 1; o < d.nrSlots; o++) {
      if (o % SWAPFILE_CLUSTER === 0) {
        checkCluster(d, o / SWAPFILE_CLUSTER - 1, clusterFree);
        clusterFree = 0;
      }
      const v = map[o]!;
      if (v === 0) {
        free++;
        clusterFree++;
        if (cache[o] !== -1) broken(`slot ${t}:${o} is free but the swap cache holds folio ${cache[o]}`);
        continue;
      }
      const count = v & COUNT_MASK;
      if (count > SWAP_MAP_MAX) broken(`slot ${t}:${o} has swap count ${count} (> SWAP_MAP_MAX: underflow?)`);
      const hasCache = (v & SWAP_HAS_CACHE) !== 0;
      const h = cache[o]!;
      if (hasCache !== h >= 0) {
        broken(
          hasCache
            ? `slot ${t}:${o} has SWAP_HAS_CACHE but the swap cache holds no folio for it`
            : `slot ${t}:${o} maps to folio ${h} in the swap cache but lacks SWAP_HAS_CACHE`,
        );
      }
      if (h >= 0) checkCachedFolio(s, t, o, h);
    }
    checkCluster(d, d.clusterFree.length - 1, clusterFree);
    if (free !== d.nrFree) broken(`device ${t}: ${free} free slots in swap_map, nrFree says ${d.nrFree}`);
  }
  checkSwapcacheFolios(s);
}

/** From the folio side: every folio with PG_swapcache is what the swap cache holds for its folio->swap. */
function checkSwapcacheFolios(s: SwapState): void {
  const mem = s.mem;
  const nrPages = mem.nrPages;
  for (let pfn = 0; pfn < nrPages; ) {
    if (mem.isFree(pfn) || mem.folioHead(pfn) !== pfn) {
      pfn++;
      continue;
    }
    const nr = mem.folioNrPages(pfn);
    if (mem.folioTest(pfn, PG.swapcache)) {
      const e = mem.folioSwap(pfn);
      const d = s.devs[e >>> SWP_OFFSET_BITS];
      const off = e & SWP_OFFSET_MASK;
      if (d === undefined || off === 0 || off + nr > d.nrSlots || d.cache[off] !== pfn) {
        broken(
          `folio ${pfn} has PG_swapcache and folio->swap ${e}, but the swap cache does not hold it there`,
        );
      }
    }
    pfn += nr;
  }
}

function checkCluster(d: SwapDevice, cl: number, free: number): void {
  if (d.clusterFree[cl] !== free) {
    broken(
      `device ${d.type} cluster ${cl}: ${free} free slots in swap_map, counter says ${d.clusterFree[cl]}`,
    );
  }
}

function checkCachedFolio(s: SwapState, t: number, o: number, h: number): void {
  const mem = s.mem;
  let ok: boolean;
  try {
    ok = !mem.isFree(h) && mem.folioHead(h) === h;
  } catch {
    ok = false;
  }
  if (!ok) broken(`slot ${t}:${o}: swap cache holds ${h}, which is not an allocated folio head`);
  if (!mem.folioTest(h, PG.swapcache)) broken(`slot ${t}:${o}: cached folio ${h} lacks PG_swapcache`);
  const e = mem.folioSwap(h);
  const nr = mem.folioNrPages(h);
  const start = e & SWP_OFFSET_MASK;
  if (e >>> SWP_OFFSET_BITS !== t || o < start || o >= start + nr || start % nr !== 0) {
    broken(`slot ${t}:${o}: cached folio ${h} has folio->swap ${e}, which does not cover it aligned`);
  }
  if (o === start) {
    const cache = s.devs[t]!.cache;
    for (let i = 0; i < nr; i++) {
      if (cache[start + i] !== h)
        broken(`slot ${t}:${start + i}: part of folio ${h}'s swap range but cached as ${cache[start + i]}`);
    }
    const ref = mem.folioRef(h);
    if (ref < nr) broken(`folio ${h}: refcount ${ref} below the swap cache's ${nr} references`);
  }
}

/**
 * Digest of the semantic state: every slot's swap_map byte and swap-cache folio on every device. Not
 * the allocator cursor, not counters.
 */
export function swapStateDigest(s: SwapState): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x9e3779b9;
  for (let t = 0; t < s.devs.length; t++) {
    const d = s.devs[t]!;
    const map = d.map;
    const cache = d.cache;
    for (let o = 0; o < d.nrSlots; o++) {
      const v = map[o]! | ((cache[o]! + 1) * 256);
      h1 = Math.imul(h1 ^ v, 0x01000193);
      h2 = Math.imul(h2 ^ (v + o), 0x85ebca6b) ^ (h2 >>> 13);
    }
    h1 = Math.imul(h1 ^ (0xd00d + t), 0x01000193);
  }
  const hex = (x: number) => (x >>> 0).toString(16).padStart(8, "0");
  return `swap:${s.devs.length}:${slotsInUse(s)}:${hex(h1)}${hex(h2)}`;
}

/** Model memory in bytes: the typed arrays of every device. */
export function swapStateBytes(s: SwapState): number {
  let b = 0;
  for (let t = 0; t < s.devs.length; t++) b += s.devs[t]!.bytes();
  return b;
}
