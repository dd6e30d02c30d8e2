// Models: the state the swap files share — the swap_info_struct array (one SwapDevice per swapon'd
// device), nr_swap_pages / total_swap_pages and vm_swap_full() (include/linux/swap.h, mm/swapfile.c,
// v6.5) — and the argument checks every entry point makes before touching it. The model files
// (swapfile.ts, swap-state.ts, invariants.ts) take this record first.
// Omits: swap priorities (devices are tried in order), the per-CPU swap slot cache, memcg swap limits.

import type { PhysMem } from "@mmgather/folio";
import type { SwapCounters } from "./counters.js";
import { SWAP_HAS_CACHE, SWP_OFFSET_BITS, SWP_OFFSET_MASK } from "./entry.js";
import { SwapError } from "./errors.js";
import { SWAP_FREED, type SwapDevice } from "./swap-device.js";

/** Everything the swap model mutates: the devices, the exact counters, and the folio layer it calls. */
export interface SwapState {
  /** The folio layer: PG_swapcache, PG_locked, PG_writeback, PG_dirty, folio->swap and refcounts. */
  readonly mem: PhysMem;
  /** swap_info[]: device `type` is `devs[type]`. */
  readonly devs: readonly SwapDevice[];
  /** total_swap_pages: usable slots on every device (headers excluded). */
  readonly totalUsable: number;
  /** Exact work counters. */
  readonly counters: SwapCounters;
  /**
   * Another CPU's chance to run inside free_swap_and_cache_nr, between dropping the swap counts and
   * reading swap_map again (a swapoff running in parallel with the zap's page-table-lock section), or
   * null. Called with the device type and the slots [offset, offset + nr) whose counts were dropped.
   */
  parallelWindow: ((type: number, offset: number, nr: number) => void) | null;
}

/** Swap count bits of a swap_map byte (everything but SWAP_HAS_CACHE). */
export const COUNT_MASK = 0xff & ~SWAP_HAS_CACHE;

/** Slots in use on all devices: swap count > 0 or SWAP_HAS_CACHE. */
export function slotsInUse(s: SwapState): number {
  let free = 0;
  for (let t = 0; t < s.devs.length; t++) free += s.devs[t]!.nrFree;
  return s.totalUsable - free;
}

/** nr_swap_pages: free slots on all devices. */
export function slotsFree(s: SwapState): number {
  return s.totalUsable - slotsInUse(s);
}

/** vm_swap_full(): fewer than half of all swap slots are free. */
export function vmSwapFull(s: SwapState): boolean {
  return slotsFree(s) * 2 < s.totalUsable;
}

/** The device a swap-cache folio's folio->swap names (the entry was checked when it was set). */
export function deviceOfEntryTrusted(s: SwapState, entry: number): SwapDevice {
  return s.devs[entry >>> SWP_OFFSET_BITS]!;
}

/** The device of `entry`, after checking that [entry, entry + nr) are usable slots of it. */
export function swapDevice(
  s: SwapState,
  entry: number,
  nr: number,
  module: string,
  method: string,
): SwapDevice {
  if (!Number.isInteger(nr) || nr < 1) {
    throw new SwapError("EINVAL", module, method, `nr must be an integer ≥ 1, got ${String(nr)}`);
  }
  if (typeof entry !== "number" || !Number.isInteger(entry) || entry <= 0 || entry > 0x7fffffff) {
    throw new SwapError("BAD_ENTRY", module, method, `${String(entry)} is not a swap entry (0 means none)`);
  }
  const t = entry >>> SWP_OFFSET_BITS;
  const off = entry & SWP_OFFSET_MASK;
  const d = s.devs[t];
  if (d === undefined) {
    throw new SwapError("BAD_ENTRY", module, method, `entry ${entry}: no swap device of type ${t}`);
  }
  if (off === 0) {
    throw new SwapError("BAD_ENTRY", module, method, `entry ${entry}: offset 0 is device ${t}'s header`);
  }
  if (d.swapoffState === SWAP_FREED) {
    throw new SwapError(
      "DEVICE_FREED",
      module,
      method,
      `entry ${entry}: swapoff already freed device ${t}'s swap_map (nothing pinned it with get_swap_device)`,
    );
  }
  if (off + nr > d.nrSlots) {
    throw new SwapError(
      "BAD_ENTRY",
      module,
      method,
      `entries ${t}:${off}..${off + nr - 1} run past device ${t}'s ${d.nrSlots} slots`,
    );
  }
  return d;
}

/** page_folio(): the head of the allocated folio containing `pfn`, after checking `pfn`. */
export function anyPfnHead(s: SwapState, pfn: number, module: string, method: string): number {
  if (typeof pfn !== "number" || !Number.isInteger(pfn) || pfn < 0) {
    throw new SwapError("BAD_FOLIO", module, method, `${String(pfn)} is not a pfn`);
  }
  let h: number;
  try {
    if (s.mem.isFree(pfn)) {
      throw new SwapError("BAD_FOLIO", module, method, `pfn ${pfn} is free, not part of an allocated folio`);
    }
    h = s.mem.folioHead(pfn);
  } catch (e) {
    if (e instanceof SwapError) throw e;
    throw new SwapError("BAD_FOLIO", module, method, `pfn ${pfn} is not a valid page frame`, { cause: e });
  }
  return h;
}

/** Checks that `pfn` is the head of an allocated folio and returns it. */
export function folioHeadOf(s: SwapState, pfn: number, module: string, method: string): number {
  const h = anyPfnHead(s, pfn, module, method);
  if (h !== pfn) {
    throw new SwapError(
      "BAD_FOLIO",
      module,
      method,
      `pfn ${pfn} is a tail page of folio ${h}, not a folio head`,
    );
  }
  return h;
}
