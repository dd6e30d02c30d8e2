// Models: the VM_BUG_ON / WARN_ON checks of mm/swapfile.c and mm/swap_state.c (v6.5, v6.10) as typed errors.
// Omits: warn-and-continue paths; every violated precondition throws before any state is changed.

import { isMmgatherError, MmgatherError, type MmgatherErrorOptions } from "@mmgather/folio";

/** Every way a swap-space call can be refused. */
export type SwapErrorCode =
  /** The swap entry is 0, has an unknown type, an offset outside the device, or names the header slot. */
  | "BAD_ENTRY"
  /** The pfn does not name an allocated folio. */
  | "BAD_FOLIO"
  /** A count, order or configuration value is out of range. */
  | "EINVAL"
  /** No free, naturally aligned run of slots is left on any device (get_swap_pages found nothing). */
  | "ENOSPC"
  /** The folio is already in the swap cache (add_to_swap on a swapcache folio). */
  | "IN_SWAPCACHE"
  /** The folio sits in a file's page cache; only anon / shmem folios out of the page cache go to swap. */
  | "IN_PAGE_CACHE"
  /** The folio is not in the swap cache but the call needs it there. */
  | "NOT_IN_SWAPCACHE"
  /** The swap cache already holds a folio for the slot (add_to_swap_cache → -EEXIST). */
  | "CACHE_EXISTS"
  /** swap_duplicate on a slot that is free (the kernel's "Unused swap offset entry", -ENOENT). */
  | "DUP_FREE_SLOT"
  /** A swap-PTE reference is dropped from a slot whose swap count is already 0. */
  | "DOUBLE_FREE"
  /** The swap count would exceed SWAP_MAP_MAX (count continuations are not modelled). */
  | "COUNT_OVERFLOW"
  /** The folio is under writeback and may not leave the swap cache (__delete_from_swap_cache VM_BUG_ON). */
  | "WRITEBACK"
  /** Deleting from the swap cache would drop the folio's last reference; the caller must hold one. */
  | "NO_CALLER_REF"
  /** checkInvariants found a broken rule. */
  | "INVARIANT"
  /** The device's swap_map was freed by swapoff and is read again (a use-after-free). */
  | "DEVICE_FREED";

/** The one error class of @mmgather/swapcache. */
export class SwapError extends MmgatherError<SwapErrorCode> {
  constructor(
    code: SwapErrorCode,
    module: string,
    method: string,
    message: string,
    options?: MmgatherErrorOptions,
  ) {
    super("SwapError", code, module, method, message, options);
  }
}

/** True for any SwapError, including one thrown by another loaded copy of this package. */
export function isSwapError(u: unknown): u is SwapError {
  return isMmgatherError(u, "SwapError");
}
