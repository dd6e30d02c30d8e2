// The PTE-aware hooks of the arch port: clearFullPtes hands the arch the PTE table before the caller
// clears a batch (then the address-only pteClear runs as ptepGetAndClear would), setPtes hands it the
// entries just written, the arch's counting ops land in the gather's counters, and an arch with a
// PTE-aware clear gives up the fused zap path while one without keeps it.
import { createPhysMem } from "@mmgather/folio";
import { describe, expect, it } from "vitest";
import {
  createMmuGather,
  createTlbMm,
  defineArch,
  type GatherEvent,
  isGatherError,
  type PteTableView,
} from "../index.js";
import { gatherTrusted } from "../internal.js";

/** A 16-entry table of plain numbers at virtual page 0x100 (only get / set / base / length are used). */
function table(): PteTableView & { t: number[] } {
  const t = new Array(16).fill(1);
  return {
    t,
    length: 16,
    base: 0x100,
    get: (i: number) => t[i],
    set: (i: number, v: number) => (t[i] = v),
  } as never;
}

describe("clearFullPtes / setPtes", () => {
  it("runs the arch's PTE-aware clear first (flush reason pteClear), then its pteClear, and counts its ops", () => {
    const seen: string[] = [];
    const arch = defineArch({
      name: "aware",
      clearPtes(tlb, ptes, index, nr, ops) {
        seen.push(`clear ${ptes.base}+${index}x${nr} reason=${tlb.flushReason}`);
        ptes.set(index, 0);
        ops.contpteConvert(false, 16, 16, 0);
        ops.contpteClear(2);
      },
      pteClear(_tlb, addr, nr) {
        seen.push(`pteClear ${addr.toString(16)}x${nr}`);
      },
      setPtes(ptes, index, nr, ops) {
        seen.push(`set ${ptes.base}+${index}x${nr}`);
        ops.contpteFold(1);
      },
    });
    const events: GatherEvent[] = [];
    const g = createMmuGather({
      mem: createPhysMem({ nrPages: 64 }),
      mm: createTlbMm(),
      arch,
      variant: "encoded-nr-pages",
      events: (e) => events.push(e),
    });
    const t = table();
    g.clearFullPtes(t, 4, 8);
    g.setPtes(t, 0, 16);
    expect(seen).toEqual(["clear 256+4x8 reason=pteClear", "pteClear 104000x8", "set 256+0x16"]);
    expect(t.t[4]).toBe(0);
    expect(events.filter((e) => e.type === "pteCleared")).toEqual([
      { type: "pteCleared", addr: 0x104000, nr: 8 },
    ]);
    expect(g.flushReason).toBeNull();
    const c = g.counters;
    expect([c.contpteUnfolds, c.contpteConvertedPtes, c.contpteConvertTlbis, c.tlbiVaOps]).toEqual([
      1, 16, 16, 16,
    ]);
    expect([c.contpteBatchedClears, c.contpteBlocksCleared, c.contpteFolds]).toEqual([1, 2, 1]);
    expect(() => g.clearFullPtes(t, 12, 8)).toThrow(/BAD_ARGUMENT|not inside a table/);
    let err: unknown;
    try {
      g.clearFullPtes(t, 0, 0);
    } catch (e) {
      err = e;
    }
    expect(isGatherError(err) && err.code).toBe("BAD_ARGUMENT");
    g.finish();
  });

  it("without PTE-aware hooks: clearFullPtes is ptepGetAndClear of the batch's addresses, setPtes nothing", () => {
    const g = createMmuGather({
      mem: createPhysMem({ nrPages: 64 }),
      mm: createTlbMm(),
      arch: defineArch({ name: "plain" }),
      variant: "encoded-page",
    });
    const t = table();
    g.clearFullPtes(t, 0, 16);
    g.setPtes(t, 0, 16);
    expect(t.t.every((v) => v === 1)).toBe(true);
    g.finish();
  });

  it("only an arch without a PTE-aware clear keeps the fused zap path", () => {
    const mem = createPhysMem({ nrPages: 64 });
    const fast = (clearPtes: null | (() => void)) =>
      gatherTrusted(
        createMmuGather({
          mem,
          mm: createTlbMm(),
          arch: defineArch({ name: "x", clearPtes }),
          variant: "encoded-page",
        }),
      ).zapFastPath();
    expect(fast(null)).toBe(true);
    expect(fast(() => {})).toBe(false);
  });
});
