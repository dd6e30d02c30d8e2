// Models: the four-level page-table tree of an mm — pgd_alloc / __pte_alloc / __pmd_alloc /
// __pud_alloc (mm/memory.c) with tables allocated on demand, each table page an order-0 folio from
// PhysMem so freeing it through the gather is real. A PUD level of one entry (`ptrsPerPud` 1: arm64 with
// 64 KiB pages and 42/48-bit VAs, three levels) is folded as include/asm-generic/pgtable-nopud.h folds
// it: the PGD entry is the PUD entry, so the level keeps a one-entry table in the tree here but no page
// backs it (its `tablePfn` is -1): nothing allocates, walks, caches or frees one (`pud_free_tlb` is a
// no-op). Omits: p4d (folded), split PMD locks, page-table ctor accounting, s390 2 KiB fragments (one
// folio per table here).
import type { PhysMem } from "@mmgather/folio";
import type { ArchGeometry } from "@mmgather/mmu-gather";
import { TeardownError } from "./errors.js";
import { mkPmdTable, PMD_HUGE, PTE_PRESENT, pmdTableId } from "./pte.js";

/** Level numbers: 0 = PTE table, 1 = PMD table, 2 = PUD table, 3 = PGD. */
export const LEVEL_PTE = 0;
export const LEVEL_PMD = 1;
export const LEVEL_PUD = 2;
export const LEVEL_PGD = 3;

/** True when two arch geometries are the same in every field (page size, table sizes, PMD order, task size). */
export function sameGeometry(a: ArchGeometry, b: ArchGeometry): boolean {
  return (
    a.pageShift === b.pageShift &&
    a.ptrsPerPte === b.ptrsPerPte &&
    a.pmdOrder === b.pmdOrder &&
    a.ptrsPerPmd === b.ptrsPerPmd &&
    a.ptrsPerPud === b.ptrsPerPud &&
    a.ptrsPerPgd === b.ptrsPerPgd &&
    a.taskSize === b.taskSize
  );
}

/** The page tables of one mm. Entries live in one Int32Array per table (never one object per PTE). */
export class PageTables {
  /** The arch adapter's geometry (entries per table at each level, page size). */
  readonly geo: ArchGeometry;
  readonly mem: PhysMem;
  /** Pages mapped by one PTE table / PMD table / PUD table / the PGD. */
  readonly span: readonly [number, number, number, number];
  /** Entries per table by level. */
  readonly ptrs: readonly [number, number, number, number];
  /** Table entries by table id (null for a released id). */
  readonly entries: (Int32Array | null)[] = [];
  /** pfn of each table's backing page, by table id. */
  tablePfn: Int32Array = new Int32Array(64);
  /** Level of each table, by table id. */
  tableLevel: Uint8Array = new Uint8Array(64);
  /** Live tables per level (mm_pgtables_bytes split by level). */
  readonly nrTables = [0, 0, 0, 0];
  /** Table pages allocated in total. */
  allocated = 0;
  private readonly freeIds: number[] = [];
  /** Table id of the PGD. */
  readonly pgd: number;
  /**
   * The PUD level is folded into the PGD (`ptrsPerPud` 1, __PAGETABLE_PUD_FOLDED): its one-entry tables
   * have no page (`tablePfn` -1).
   */
  readonly pudFolded: boolean;

  constructor(geo: ArchGeometry, mem: PhysMem) {
    this.geo = geo;
    this.mem = mem;
    this.ptrs = [geo.ptrsPerPte, geo.ptrsPerPmd, geo.ptrsPerPud, geo.ptrsPerPgd];
    const s0 = geo.ptrsPerPte;
    const s1 = s0 * geo.ptrsPerPmd;
    const s2 = s1 * geo.ptrsPerPud;
    this.span = [s0, s1, s2, s2 * geo.ptrsPerPgd];
    this.pudFolded = geo.ptrsPerPud === 1;
    this.pgd = this.allocTable(LEVEL_PGD);
  }

  /**
   * Makes these tables an exact copy of `src`'s (same geometry; the table pages are `src`'s pfns, so the
   * copy belongs to a copy of `src`'s memory): every table's entries, the ids, levels and backing pfns,
   * free ids and counts. A table of the same size already here is reused; nothing is allocated from
   * memory. A model facility, nothing the kernel does.
   */
  copyFrom(src: PageTables): void {
    if (!sameGeometry(src.geo, this.geo) || src.pgd !== this.pgd)
      throw new TeardownError(
        "EINVAL",
        "page-tables",
        "copyFrom",
        "the two page-table trees differ in geometry",
      );
    if (src === this) return;
    const n = src.entries.length;
    for (let id = 0; id < n; id++) {
      const t = src.entries[id];
      const mine = id < this.entries.length ? this.entries[id] : null;
      let copy: Int32Array | null = null;
      if (t !== null) {
        if (mine !== null && mine.length === t.length) {
          mine.set(t);
          copy = mine;
        } else copy = t.slice();
      }
      if (id < this.entries.length) this.entries[id] = copy;
      else this.entries.push(copy);
    }
    this.entries.length = n;
    if (this.tablePfn.length === src.tablePfn.length) this.tablePfn.set(src.tablePfn);
    else this.tablePfn = src.tablePfn.slice();
    if (this.tableLevel.length === src.tableLevel.length) this.tableLevel.set(src.tableLevel);
    else this.tableLevel = src.tableLevel.slice();
    for (let l = 0; l < 4; l++) this.nrTables[l] = src.nrTables[l];
    this.allocated = src.allocated;
    this.freeIds.length = 0;
    for (const id of src.freeIds) this.freeIds.push(id);
  }

  /**
   * Allocates a zeroed table of `level` backed by an order-0 folio (pte_alloc_one & co); a folded PUD
   * level gets its pageless one-entry table.
   */
  allocTable(level: number): number {
    if (level === LEVEL_PUD && this.pudFolded) return this.installTable(level, -1);
    let pfn: number;
    try {
      pfn = this.mem.allocFolio(0);
    } catch (e) {
      throw new TeardownError("ENOMEM", "page-tables", "allocTable", "no memory for a page-table page", {
        cause: e,
      });
    }
    return this.installTable(level, pfn);
  }

  /**
   * A table of `level` backed by the page `pfn` the caller already owns (pmd_populate of a table
   * withdrawn from the deposit, `pgtable_trans_huge_withdraw`): no page is allocated.
   */
  installTable(level: number, pfn: number): number {
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.entries.length;
    if (id >= this.tablePfn.length) {
      const p = new Int32Array(this.tablePfn.length * 2);
      p.set(this.tablePfn);
      this.tablePfn = p;
      const l = new Uint8Array(this.tableLevel.length * 2);
      l.set(this.tableLevel);
      this.tableLevel = l;
    }
    const t = new Int32Array(this.ptrs[level]);
    if (id === this.entries.length) this.entries.push(t);
    else this.entries[id] = t;
    this.tablePfn[id] = pfn;
    this.tableLevel[id] = level;
    if (pfn >= 0) {
      this.nrTables[level]++;
      this.allocated++;
    }
    return id;
  }

  /** Forgets a table id whose page has been handed to the gather (or freed). */
  releaseId(id: number): void {
    if (this.tablePfn[id] >= 0) this.nrTables[this.tableLevel[id]]--;
    this.entries[id] = null;
    this.tablePfn[id] = -1;
    this.freeIds.push(id);
  }

  /** Index of `vpn` inside its table at `level`. */
  index(vpn: number, level: number): number {
    return level === 0 ? vpn % this.span[0] : Math.floor(vpn / this.span[level - 1]) % this.ptrs[level];
  }

  /** Id of the PMD table covering `vpn`, allocating the path when `alloc`; -1 if absent. */
  pmdTable(vpn: number, alloc: boolean): number {
    let id = this.pgd;
    for (let level = LEVEL_PGD; level > LEVEL_PMD; level--) {
      const t = this.entries[id]!;
      const i = this.index(vpn, level);
      if (t[i] === 0) {
        if (!alloc) return -1;
        t[i] = mkPmdTable(this.allocTable(level - 1));
      }
      id = pmdTableId(t[i]);
    }
    return id;
  }

  /**
   * Id of the PUD table on the path to `vpn` (the table holding its PMD table), or -1. With a folded PUD
   * level it has no page: `tablePfn` of it is -1.
   */
  pmdParent(vpn: number): number {
    const g = this.entries[this.pgd]![this.index(vpn, LEVEL_PGD)];
    return g === 0 ? -1 : pmdTableId(g);
  }

  /**
   * Id of the PTE table covering `vpn`; -1 if absent; -2 if a huge PMD maps it. Allocates the
   * path when `alloc` and the slot is empty.
   */
  pteTable(vpn: number, alloc: boolean): number {
    const pmdId = this.pmdTable(vpn, alloc);
    if (pmdId < 0) return -1;
    const pmd = this.entries[pmdId]!;
    const i = this.index(vpn, LEVEL_PMD);
    const e = pmd[i];
    if (e === 0) {
      if (!alloc) return -1;
      const id = this.allocTable(LEVEL_PTE);
      pmd[i] = mkPmdTable(id);
      return id;
    }
    if ((e & PTE_PRESENT) !== 0) return -2;
    return pmdTableId(e);
  }

  /** Whether a PMD slot value is a huge (PMD-mapped) leaf. */
  static isHugePmd(e: number): boolean {
    // A table pointer ((tableId + 1) << 1, bit 0 clear) may have the PMD_HUGE bit set too.
    return (e & PTE_PRESENT) !== 0 && (e & PMD_HUGE) !== 0;
  }

  /** Model bytes of the tables (4 bytes per entry plus per-table bookkeeping). */
  stateBytes(): number {
    let b = this.tablePfn.byteLength + this.tableLevel.byteLength;
    for (let id = 0; id < this.entries.length; id++) {
      const t = this.entries[id];
      if (t !== null && this.tablePfn[id] >= 0) b += t.byteLength;
    }
    return b;
  }
}
