import { describe, expect, it } from "vitest";
import {
  createPhysMem,
  type FolioError,
  type FolioErrorCode,
  isFolioError,
  isMmgatherError,
  PG,
} from "../index.js";
import { folioState } from "../internal.js";
import { mappedAnon, mem } from "./helpers.js";

function codeOf(fn: () => unknown): FolioErrorCode | "none" {
  try {
    fn();
  } catch (e) {
    if (isFolioError(e)) return e.code;
    throw e;
  }
  return "none";
}

describe("errors", () => {
  it("every code is raised by the misuse it names", () => {
    const m = mem({ nrPages: 2048 });
    const h = m.allocFolio(2);
    expect(codeOf(() => createPhysMem({ nrPages: 0 }))).toBe("EINVAL");
    expect(codeOf(() => m.allocFolio(0, { memcg: 3 }))).toBe("EINVAL");
    expect(codeOf(() => m.folioRefAdd(h, 0))).toBe("EINVAL");
    expect(codeOf(() => m.folioHead(-1))).toBe("BAD_PFN");
    expect(codeOf(() => m.folioHead(1.5))).toBe("BAD_PFN");
    expect(codeOf(() => m.folioRef(2048))).toBe("BAD_PFN");
    expect(codeOf(() => m.folioRef("3" as unknown as number))).toBe("BAD_PFN");
    expect(codeOf(() => m.allocFolio(10))).toBe("BAD_ORDER");
    expect(codeOf(() => m.allocFolio(-1))).toBe("BAD_ORDER");
    expect(codeOf(() => m.folioSet(h, PG.lru))).toBe("BAD_FLAG");
    expect(codeOf(() => m.folioTest(h, 3))).toBe("BAD_FLAG");
    expect(codeOf(() => m.foliosPutRefsDoOne(h, 1))).toBe("BAD_STATE");
    expect(codeOf(() => m.folioRef(h + 1))).toBe("NOT_HEAD");
    expect(codeOf(() => m.folioRef(h + 4))).toBe("USE_AFTER_FREE");
    expect(codeOf(() => m.folioAddRmapPtes(h, h, 5))).toBe("RANGE_OUTSIDE_FOLIO");
    expect(codeOf(() => m.folioRemoveRmapPtes(h, h, 1))).toBe("MAPCOUNT_UNDERFLOW");
    expect(codeOf(() => m.pageRemoveRmap(h + 2, false))).toBe("MAPCOUNT_UNDERFLOW");
    expect(codeOf(() => m.folioRefSubAndTest(h, 2))).toBe("REFCOUNT_UNDERFLOW");
    m.folioGet(h);
    expect(codeOf(() => m.freeFolio(h))).toBe("FREE_WITH_REFS");
    m.folioPut(h);
    m.folioAddRmapPtes(h, h + 1, 1);
    expect(codeOf(() => m.freeFolio(h))).toBe("FREE_MAPPED");
    expect(codeOf(() => m.folioPut(h))).toBe("FREE_MAPPED");
    m.folioRemoveRmapPtes(h, h + 1, 1);
    m.folioSet(h, PG.locked);
    expect(codeOf(() => m.freeFolio(h))).toBe("FREE_BAD_FLAGS");
    m.folioClear(h, PG.locked);
    m.freeFolio(h);
    expect(codeOf(() => m.freeFolio(h))).toBe("DOUBLE_FREE");
    expect(codeOf(() => m.folioPut(h))).toBe("USE_AFTER_FREE");
    const all: number[] = [];
    expect(
      codeOf(() => {
        for (;;) all.push(m.allocFolio(9));
      }),
    ).toBe("ENOMEM");
    expect(all.length).toBe(4);
    m.folioPut(all[0]);
    const x = m.allocFolio(0);
    expect(codeOf(() => m.allocFolio(9))).toBe("ENOMEM");
    folioState(m).refcount[x] = -3;
    expect(codeOf(() => m.checkInvariants())).toBe("INVARIANT");
  });

  it("messages name the method, the folio and what was wrong", () => {
    const m = mem();
    const h = m.allocFolio(0);
    m.folioGet(h);
    let err: unknown;
    try {
      m.freeFolio(h);
    } catch (e) {
      err = e;
    }
    expect(isFolioError(err)).toBe(true);
    const fe = err as FolioError;
    expect(fe.message).toBe(`swap.freeFolio(${h}): folio still has refcount 2 [FREE_WITH_REFS]`);
    expect(fe.module).toBe("swap");
    expect(fe.method).toBe("freeFolio");
    expect(fe.name).toBe("FolioError");
    expect(fe).toBeInstanceOf(Error);
  });

  it("isFolioError recognises the brand of another package copy and rejects look-alikes", () => {
    const foreign = Object.assign(new Error("x"), {
      [Symbol.for("@mmgather/error")]: "FolioError",
      code: "EINVAL",
    });
    expect(isFolioError(foreign)).toBe(true);
    expect(isMmgatherError(foreign)).toBe(true);
    // The brand, not the name, decides: a look-alike without it is not a FolioError.
    const byName = Object.assign(new Error("y"), { name: "FolioError", module: "folio", code: "ENOMEM" });
    expect(isFolioError(byName)).toBe(false);
    const otherClass = Object.assign(new Error("z"), {
      [Symbol.for("@mmgather/error")]: "SwapError",
      code: "X",
    });
    expect(isFolioError(otherClass)).toBe(false);
    expect(isMmgatherError(otherClass)).toBe(true);
    expect(isMmgatherError(otherClass, "SwapError")).toBe(true);
    expect(isFolioError(new Error("plain"))).toBe(false);
    expect(isFolioError(null)).toBe(false);
    expect(isFolioError("FolioError")).toBe(false);
  });

  it("errors leave state untouched (validation happens before mutation)", () => {
    const m = mem();
    const h = mappedAnon(m, 3);
    const before = m.stateDigest();
    expect(codeOf(() => m.folioRemoveRmapRange(h, h + 6, 4))).toBe("RANGE_OUTSIDE_FOLIO");
    m.folioRemoveRmapPtes(h, h + 7, 1);
    const mid = m.stateDigest();
    expect(mid).not.toBe(before);
    expect(codeOf(() => m.folioRemoveRmapPtes(h, h + 6, 2))).toBe("MAPCOUNT_UNDERFLOW");
    expect(m.stateDigest()).toBe(mid);
    expect(codeOf(() => m.foliosPutRefs([h], [100], 1))).toBe("REFCOUNT_UNDERFLOW");
    expect(codeOf(() => m.foliosPutRefs(new Array(32).fill(h), new Array(32).fill(1), 32))).toBe("EINVAL");
    expect(codeOf(() => m.releasePages([h, 5000], 0, 2))).toBe("BAD_PFN");
    expect(m.stateDigest()).toBe(mid);
    m.checkInvariants();
  });
});

describe("release and LRU entry points refuse bad arguments, each with its code and what was wrong", () => {
  const err = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      if (isFolioError(e)) return `${e.code}: ${e.message}`;
      throw e;
    }
    return "none";
  };
  it("release_pages", () => {
    const m = mem();
    const h = m.allocFolio(0);
    expect(err(() => m.releasePages(null as unknown as number[], 0, 0))).toMatch(
      /^EINVAL: .*array-like of pfns/,
    );
    expect(err(() => m.releasePages({ length: 1.5 } as unknown as number[], 0, 0))).toMatch(/^EINVAL/);
    expect(err(() => m.releasePages([h], -1, 1))).toMatch(
      /^EINVAL: .*start -1, nr 1.*outside pages\[0\.\.1\)/,
    );
    expect(err(() => m.releasePages([h], 0, 2))).toMatch(/^EINVAL: .*outside pages\[0\.\.1\)/);
    expect(err(() => m.releasePages([h], 1, 1))).toMatch(/^EINVAL/);
    expect(err(() => m.releasePages([h], 0, -1))).toMatch(/^EINVAL/);
    expect(err(() => m.releasePages([h], 0.5, 0))).toMatch(/^EINVAL/);
    expect(err(() => m.releasePages([h], 1, 0))).toBe("none"); // an empty range at the end is fine
    expect(err(() => m.releasePages([h + 1], 0, 1))).toMatch(/^USE_AFTER_FREE: .*pfn \d+ is free memory/);
    expect(m.folioRef(h)).toBe(1);
    expect(err(() => m.releasePages([h], 0, 1))).toBe("none");
    expect(m.isFree(h)).toBe(true);
  });

  it("folios_put_refs", () => {
    const m = mem();
    const h = m.allocFolio(0);
    expect(err(() => m.foliosPutRefs(null as unknown as number[], [1], 1))).toMatch(
      /^EINVAL: .*heads and refs/,
    );
    expect(err(() => m.foliosPutRefs([h], null as unknown as number[], 1))).toMatch(
      /^EINVAL: .*heads and refs/,
    );
    expect(err(() => m.foliosPutRefs([h], [1], 2))).toMatch(/^EINVAL: .*nr 2.*within both arrays/);
    expect(err(() => m.foliosPutRefs([h, h], [1], 2))).toMatch(/^EINVAL/);
    expect(err(() => m.foliosPutRefs([h], [1], -1))).toMatch(/^EINVAL/);
    const many = new Array(32).fill(h);
    expect(err(() => m.foliosPutRefs(many, many, 32))).toMatch(/^EINVAL: .*0\.\.31/);
    expect(err(() => m.foliosPutRefs([h], [0], 1))).toMatch(/^EINVAL: .*\(refs\[0\] = 0\)/);
    expect(err(() => m.foliosPutRefs([h], [1.5], 1))).toMatch(/^EINVAL/);
    expect(err(() => m.foliosPutRefs([h], [2], 1))).toMatch(
      /^REFCOUNT_UNDERFLOW: .*dropping 2 refs from refcount 1/,
    );
    expect(m.folioRef(h)).toBe(1);
    expect(err(() => m.foliosPutRefs([h], [1], 0))).toBe("none");
    expect(m.folioRef(h)).toBe(1);
  });

  it("the series' folios_put_refs context", () => {
    const m = mem();
    const h = m.allocFolio(0);
    expect(err(() => m.foliosPutRefsDoOne(h, 1))).toMatch(/^BAD_STATE: .*no open context/);
    expect(err(() => m.foliosPutRefsComplete())).toMatch(/^BAD_STATE: .*no open context/);
    m.foliosPutRefsInit();
    expect(err(() => m.foliosPutRefsInit())).toMatch(/^BAD_STATE: .*already open/);
    expect(err(() => m.foliosPutRefsDoOne(h, 0))).toMatch(/^EINVAL: .*refs must be an integer >= 1/);
    expect(err(() => m.foliosPutRefsDoOne(h, 2))).toMatch(/^REFCOUNT_UNDERFLOW/);
    expect(err(() => m.foliosPutRefsDoOne(h + 1, 1))).toMatch(/^USE_AFTER_FREE/);
    m.foliosPutRefsDoOne(h, 1);
    m.foliosPutRefsComplete();
    expect(m.isFree(h)).toBe(true);
  });

  it("folio_put and folio_add_lru", () => {
    const m = mem();
    const h = m.allocFolio(0);
    m.folioAddLru(h);
    expect(err(() => m.folioAddLru(h))).toMatch(/^BAD_STATE: .*already in the LRU-add batch/);
    m.lruAddDrain();
    expect(err(() => m.folioAddLru(h))).toMatch(/^BAD_STATE: .*already on an LRU list/);
    m.folioPut(h);
    expect(err(() => m.folioPut(h))).toMatch(/^USE_AFTER_FREE|^REFCOUNT_UNDERFLOW/);
    const g = m.allocFolio(0);
    m.folioRefSubAndTest(g, 1); // refcount 0 without freeing (a caller about to free it)
    expect(err(() => m.folioAddLru(g))).toMatch(/^BAD_STATE: .*refcount 0/);
    expect(err(() => m.folioPut(g))).toMatch(/^REFCOUNT_UNDERFLOW: .*already 0/);
  });
});
