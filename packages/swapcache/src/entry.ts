// Models: swp_entry(), swp_type(), swp_offset() (include/linux/swapops.h, v6.5) and the swap_map
// constants of include/linux/swap.h. Omits: the arch PTE encoding, non-swap entries (migration,
// device-private, markers), COUNT_CONTINUED, SWAP_MAP_SHMEM.

import { SwapError } from "./errors.js";

/** Flag in a slot's swap_map byte: the swap cache holds a folio for this slot. */
export const SWAP_HAS_CACHE = 0x40;
/** Largest swap count kept in the swap_map byte itself (higher needs count continuations). */
export const SWAP_MAP_MAX = 0x3e;
/** swap_map value of an unusable slot; the header slot (offset 0) carries it. */
export const SWAP_MAP_BAD = 0x3f;
/** Slots per swap cluster: one PMD-sized folio (HPAGE_PMD_NR with 4 KiB pages). */
export const SWAPFILE_CLUSTER = 512;
/** Bits of an entry that hold the offset; the type sits above them. */
export const SWP_OFFSET_BITS = 26;
/** Mask of the offset bits of an entry. */
export const SWP_OFFSET_MASK = (1 << SWP_OFFSET_BITS) - 1;
/** Number of swap devices an entry can name (types 0..31): the entry stays a non-negative int32. */
export const MAX_SWAPFILES = 32;
/** Largest number of slots a device can have. */
export const MAX_SWAP_SLOTS = SWP_OFFSET_MASK + 1;

/**
 * Packs (type, offset) into one non-negative integer that fits an Int32Array PTE slot.
 * 0 is "no entry": offset 0 of every device is the header and is never allocated, so
 * swpEntry(0, 0) never names a usable slot.
 */
export function swpEntry(type: number, offset: number): number {
  if (!Number.isInteger(type) || type < 0 || type >= MAX_SWAPFILES) {
    throw new SwapError(
      "BAD_ENTRY",
      "entry",
      "swpEntry",
      `type ${type} is not an integer in 0..${MAX_SWAPFILES - 1}`,
    );
  }
  if (!Number.isInteger(offset) || offset < 0 || offset > SWP_OFFSET_MASK) {
    throw new SwapError(
      "BAD_ENTRY",
      "entry",
      "swpEntry",
      `offset ${offset} is not an integer in 0..${SWP_OFFSET_MASK}`,
    );
  }
  return ((type << SWP_OFFSET_BITS) | offset) >>> 0;
}

/** The device index of an entry. */
export function swpType(entry: number): number {
  return entry >>> SWP_OFFSET_BITS;
}

/** The slot index of an entry inside its device. */
export function swpOffset(entry: number): number {
  return entry & SWP_OFFSET_MASK;
}
