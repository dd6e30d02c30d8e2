import { describe, expect, it } from "vitest";
import * as api from "../index.js";

describe("public API", () => {
  it("pins the runtime exports", () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        "MAX_TLBI_RANGE_PAGES",
        "TLBI_TTL_UNKNOWN",
        "arm64Arch",
        "arm64Cost",
        "arm64Geometry",
        "createArm64Arch",
        "flushTlbRangeOps",
        "maxDvmOps",
        "tlbGetLevel",
        "tlbiRangeNum",
        "tlbiRangePages",
      ].sort(),
    );
  });
});
