import { isFolioError, isMmgatherError } from "@mmgather/folio";
import { describe, expect, it } from "vitest";
import {
  isSwapError,
  MAX_SWAPFILES,
  SWP_OFFSET_MASK,
  SwapError,
  swpEntry,
  swpOffset,
  swpType,
} from "../index.js";

describe("swap entries", () => {
  it("round-trips type and offset through one non-negative int32", () => {
    for (const [t, o] of [
      [0, 1],
      [3, 12345],
      [MAX_SWAPFILES - 1, SWP_OFFSET_MASK],
    ] as const) {
      const e = swpEntry(t, o);
      expect(e).toBeGreaterThan(0);
      expect(e).toBe(e | 0);
      expect([swpType(e), swpOffset(e)]).toEqual([t, o]);
    }
    expect(swpEntry(0, 0)).toBe(0);
  });

  it("rejects out-of-range parts with a SwapError", () => {
    for (const [t, o] of [
      [MAX_SWAPFILES, 1],
      [-1, 1],
      [0, SWP_OFFSET_MASK + 1],
      [0, 0.5],
    ] as const) {
      let err: unknown;
      try {
        swpEntry(t, o);
      } catch (e) {
        err = e;
      }
      expect(isSwapError(err)).toBe(true);
      expect((err as SwapError).code).toBe("BAD_ENTRY");
      expect((err as SwapError).method).toBe("swpEntry");
    }
  });
});

describe("SwapError", () => {
  it("carries code, module, method and a message naming the problem; the guard checks the brand", () => {
    const e = new SwapError("DOUBLE_FREE", "swapcache", "freeSwapAndCache", "slot 0:3 is already free");
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toContain("slot 0:3 is already free");
    expect(e.message).toBe("swapcache.freeSwapAndCache: slot 0:3 is already free [DOUBLE_FREE]");
    expect(e.module).toBe("swapcache");
    expect(isMmgatherError(e)).toBe(true);
    expect(isFolioError(e)).toBe(false);
    expect(isSwapError(e)).toBe(true);
    // A copy from another loaded instance of the package: same shape, different class.
    const foreign = Object.assign(new Error("x"), {
      [Symbol.for("@mmgather/error")]: "SwapError",
      code: "ENOSPC",
    });
    expect(isSwapError(foreign)).toBe(true);
    expect(isSwapError(new Error("x"))).toBe(false);
    expect(isSwapError({ code: "ENOSPC" })).toBe(false);
    expect(isSwapError(null)).toBe(false);
  });
});
