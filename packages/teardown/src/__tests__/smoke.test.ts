import { describe, expect, it } from "vitest";
import { createMachine } from "../machine.js";
import { exitMmap } from "../ops.js";
import { createRng } from "../rng.js";
import { faultIn, mmapVma } from "../workload.js";

describe("smoke", () => {
  it("exit frees everything", () => {
    for (const variant of ["encoded-page", "contig-range", "encoded-nr-pages"] as const) {
      const m = createMachine({ memoryBytes: 64 << 20 });
      const mm = m.createMm();
      const v = mmapVma(mm, "anon", 8 << 20);
      faultIn(mm, v, { policy: { order: 0 } }, createRng(1));
      const free0 = m.mem.nrFreePages();
      const r = exitMmap(mm, { variant });
      expect(mm.rss[1]).toBe(0);
      expect(m.mem.nrFreePages()).toBeGreaterThan(free0 + 2048);
      console.log(variant, r.gather.forcedFlushes, r.walkCounters.forcedFlushBatchFull, m.mem.nrFreePages(), 64 << 8);
    }
  });
});
