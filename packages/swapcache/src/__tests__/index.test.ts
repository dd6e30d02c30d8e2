import { describe, expect, it } from "vitest";
import * as api from "../index.js";

describe("public exports", () => {
  it("pins the runtime exports of src/index.ts", () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        "MAX_SWAPFILES",
        "MAX_SWAP_SLOTS",
        "SWAPFILE_CLUSTER",
        "SWAP_FREED",
        "SWAP_HAS_CACHE",
        "SWAP_KILLED",
        "SWAP_ON",
        "SWAP_UNUSING",
        "SWAP_MAP_BAD",
        "SWAP_MAP_MAX",
        "SWP_OFFSET_BITS",
        "SWP_OFFSET_MASK",
        "SwapError",
        "SwapSpace",
        "createSwapCounters",
        "createSwapSpace",
        "isSwapError",
        "resetSwapCounters",
        "swpEntry",
        "swpOffset",
        "swpType",
      ].sort(),
    );
    expect(api.SWAP_HAS_CACHE).toBe(0x40);
    // swapoff's stages, in order.
    expect([api.SWAP_ON, api.SWAP_UNUSING, api.SWAP_KILLED, api.SWAP_FREED]).toEqual([0, 1, 2, 3]);
  });
});
