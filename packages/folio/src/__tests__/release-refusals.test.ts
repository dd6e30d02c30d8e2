// The batch release paths refuse what free_pages_prepare refuses (mm/page_alloc.c, v6.18:
// free_page_is_bad / page_expected_state; mm/swap.c folios_put_refs and 6.5 release_pages put the last
// reference and free): a folio that is still mapped, locked, under writeback, in the swap cache, in a
// file's page cache or still held by the per-CPU LRU-add batch never reaches the allocator — whichever
// path drops its last reference. A reference that is not the last one is dropped without complaint.

import { describe, expect, it } from "vitest";
import { PG, type PhysMem } from "../index.js";
import { mem } from "./helpers.js";

type Path = (m: PhysMem, head: number, refs: number) => void;

const PATHS: [string, Path][] = [
  [
    "folio_put",
    (m, h, refs) => {
      for (let i = 0; i < refs; i++) m.folioPut(h);
    },
  ],
  ["folios_put_refs (7.x)", (m, h, refs) => m.foliosPutRefs([h], [refs], 1)],
  ["release_pages (6.5)", (m, h, refs) => m.releasePages(new Array(refs).fill(h), 0, refs)],
  [
    "__folios_put_refs_do_one (the series)",
    (m, h, refs) => {
      m.foliosPutRefsInit();
      m.foliosPutRefsDoOne(h, refs);
      m.foliosPutRefsComplete();
    },
  ],
];

interface Bad {
  readonly code: string;
  readonly message: RegExp;
  /** Builds the folio; returns its head and how many references it holds. */
  make(m: PhysMem): { head: number; refs: number };
}

const BAD: Record<string, Bad> = {
  "still PTE-mapped (order 0)": {
    code: "FREE_MAPPED",
    message: /still mapped \(mapcount 1\)/,
    make(m) {
      const h = m.allocFolio(0);
      m.folioSetAnon(h, 3, h);
      m.folioAddRmapPtes(h, h, 1); // a mapping whose reference a bad put already dropped
      return { head: h, refs: 1 };
    },
  },
  "still PTE-mapped (order 2, one page)": {
    code: "FREE_MAPPED",
    message: /still mapped \(mapcount 1\)/,
    make(m) {
      const h = m.allocFolio(2);
      m.folioSetAnon(h, 3, h);
      m.folioAddRmapPtes(h, h + 3, 1);
      return { head: h, refs: 1 };
    },
  },
  "still PMD-mapped (order 9)": {
    code: "FREE_MAPPED",
    message: /still mapped \(mapcount 1\)/,
    make(m) {
      const h = m.allocFolio(9);
      m.folioSetAnon(h, 3, h);
      m.folioAddRmapPmd(h);
      return { head: h, refs: 1 };
    },
  },
  locked: {
    code: "FREE_BAD_FLAGS",
    message: /PG_locked/,
    make(m) {
      const h = m.allocFolio(0);
      m.folioSet(h, PG.locked);
      return { head: h, refs: 1 };
    },
  },
  "under writeback": {
    code: "FREE_BAD_FLAGS",
    message: /PG_writeback/,
    make(m) {
      const h = m.allocFolio(1);
      m.folioSet(h, PG.writeback);
      return { head: h, refs: 1 };
    },
  },
  "in the swap cache": {
    code: "FREE_BAD_FLAGS",
    message: /PG_swapcache/,
    make(m) {
      const h = m.allocFolio(0);
      m.folioSetAnon(h, 3, h);
      m.folioSet(h, PG.swapcache);
      return { head: h, refs: 1 };
    },
  },
  "in a file's page cache": {
    code: "FREE_BAD_FLAGS",
    message: /still in page cache mapping \d+/,
    make(m) {
      const h = m.allocFolio(2);
      m.filemapAddFolio(m.createAddressSpace({ swapBacked: false }), h, 0); // the cache's 4 references
      return { head: h, refs: 5 };
    },
  },
  "in the per-CPU LRU-add batch": {
    code: "FREE_BAD_FLAGS",
    message: /still in the per-CPU LRU-add batch/,
    make(m) {
      const h = m.allocFolio(0);
      m.folioAddLru(h); // the batch holds a reference
      return { head: h, refs: 2 };
    },
  },
};

function codeOf(f: () => void): { code: string; message: string } | null {
  try {
    f();
  } catch (e) {
    const x = e as { code?: string; message?: string };
    return { code: x.code ?? "untyped", message: x.message ?? "" };
  }
  return null;
}

describe("release paths refuse to free what free_pages_prepare refuses", () => {
  for (const [path, put] of PATHS) {
    for (const [what, bad] of Object.entries(BAD)) {
      it(`${path}: the last reference of a folio ${what} → ${bad.code}, nothing freed`, () => {
        const m = mem();
        const { head, refs } = bad.make(m);
        const free0 = m.nrFreePages();
        const err = codeOf(() => put(m, head, refs));
        expect(err?.code).toBe(bad.code);
        expect(err?.message).toMatch(bad.message);
        expect(m.isFree(head)).toBe(false);
        expect(m.nrFreePages()).toBe(free0);
      });
    }
  }

  for (const [path, put] of PATHS) {
    it(`${path}: a reference that is not the last is dropped whatever the folio's state`, () => {
      for (const [what, bad] of Object.entries(BAD)) {
        if (what.startsWith("still")) continue; // a mapped folio keeps one reference per mapping
        const m = mem();
        const { head, refs } = bad.make(m);
        m.folioGet(head);
        expect(codeOf(() => put(m, head, refs))).toBeNull();
        expect(m.folioRef(head)).toBe(1);
        expect(m.isFree(head)).toBe(false);
      }
    });
  }

  it("a refused folio in the middle of a 7.x batch: the folios before it are freed, it and the rest are not", () => {
    const m = mem();
    const good1 = m.allocFolio(0);
    const locked = m.allocFolio(0);
    m.folioSet(locked, PG.locked);
    const good2 = m.allocFolio(0);
    expect(codeOf(() => m.foliosPutRefs([good1, locked, good2], [1, 1, 1], 3))?.code).toBe("FREE_BAD_FLAGS");
    expect(m.isFree(locked)).toBe(false);
    expect(m.isFree(good2)).toBe(false);
    expect(m.folioRef(good2)).toBe(1);
  });
});
