import { describe, expect, it } from "vitest";
import * as api from "../index.js";

describe("public exports", () => {
  it("pins the runtime exports of src/index.ts", () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        "MAX_SWAPFILES",
        "MAX_SWAP_SLOTS",
        "SWAPFILE_CLUSTER",
        "SWAP_HAS_CACHE",
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
  });
});
