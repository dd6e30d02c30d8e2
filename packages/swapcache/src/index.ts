// Public API of @mmgather/swapcache: swap devices, swap entries, the swap cache and the swap-side work of
// process teardown (free_swap_cache, free_swap_and_cache(_nr)), and swapoff's device lifetime
// (get_swap_device / put_swap_device, try_to_unuse's cache pass, percpu_ref_kill, swap_map freed).

export type { SwapCounters } from "./counters.js";
export { createSwapCounters, resetSwapCounters } from "./counters.js";
export {
  MAX_SWAP_SLOTS,
  MAX_SWAPFILES,
  SWAP_HAS_CACHE,
  SWAP_MAP_BAD,
  SWAP_MAP_MAX,
  SWAPFILE_CLUSTER,
  SWP_OFFSET_BITS,
  SWP_OFFSET_MASK,
  swpEntry,
  swpOffset,
  swpType,
} from "./entry.js";
export type { SwapErrorCode } from "./errors.js";
export { isSwapError, SwapError } from "./errors.js";
export { SWAP_FREED, SWAP_KILLED, SWAP_ON, SWAP_UNUSING } from "./swap-device.js";
export type { FreeSwapOptions, SwapSpaceConfig } from "./swap-space.js";
export { createSwapSpace, SwapSpace } from "./swap-space.js";
