// Models: building a process image the way the kernel would have: do_anonymous_page with large
// folios and do_huge_pmd_anonymous_page (mm/memory.c, mm/huge_memory.c), filemap / shmem faults
// mapping page-cache folios (finish_fault / set_pte_range / do_set_pmd), write faults on private
// file mappings (wp_page_copy: one private anon page per written page), fork's copy_page_range /
// copy_present_ptes / copy_huge_pmd (folio_dup_*_rmap, one reference per mapping), reclaim's
// swap-out (add_to_swap, try_to_unmap, pageout, __remove_mapping), and CPU accesses that fill TLBs
// and walk caches. Anonymous folios take the orders of THP_ORDERS_ALL_ANON (include/linux/huge_mm.h,
// v6.8 to 7.x: every order up to PMD_ORDER except 1; alloc_anon_folio falls back past order 1 to 0);
// page-cache folios may be order 1.
// Read faults on anon memory (Linux v6.18): do_anonymous_page maps the shared zero page (a special
// PTE of my_zero_pfn: no folio, no rmap, no reference, no rss, and no anon_vma — vmf_anon_prepare
// comes after the zero-page branch), one PTE per faulted page; do_huge_pmd_anonymous_page maps the
// huge zero folio for a PMD-mapped range (vmf_anon_prepare, pte_alloc_one + mm_get_huge_zero_folio,
// set_huge_zero_folio: a special PMD and a deposited PTE table; no rmap, no rss). fork copies a zero
// PTE as it is (copy_present_ptes: vm_normal_page is NULL) and a huge zero PMD with
// mm_get_huge_zero_folio for the child and a deposit (copy_huge_pmd); vma_needs_copy skips an anon
// VMA without an anon_vma (only zero pages: the child refaults them). mlock and reclaim never see
// the zero pages (vm_normal_folio is NULL; they are not on the LRU).
// VM_PFNMAP VMAs (Linux v6.18): the driver's mmap maps the whole VMA at once (remap_pfn_range →
// remap_pte_range: one special PTE per page of its device file's pfns, in file order from vm_pgoff), no
// folio, no rmap, no reference, no rss. fork copies them (vma_needs_copy: VM_PFNMAP is in
// VM_COPY_ON_FORK; copy_present_ptes: vm_normal_page is NULL, so __copy_present_ptes copies the PTE
// alone, clean and old for the child, write bit kept: not a COW mapping). mlock leaves them alone
// (mlock_fixup skips VM_SPECIAL VMAs: VM_LOCKED is never set), reclaim and THP never see them.
// Every set_ptes of a folio's pages (fault, fork's copy in the child) goes through the arch's PTE-aware
// hook when it has one (arm64 contpte folds the aligned, fully mapped blocks); zero and pfnmap PTEs are
// special and never fold. A CPU access through a PTE with the contiguous bit caches the whole block.
// Omits: readahead, khugepaged, mTHP sysfs policy, uffd, KSM, mm_forbids_zeropage (s390 KVM guests),
// the use_zero_page sysfs switch (always on), write faults on a zero PTE or huge zero PMD (COW), the
// parent's contpte_wrprotect_ptes unfold of a block that fork copies only in part (a block across a
// VMA boundary), reclaim's unfold before it writes swap PTEs (the whole folio is unmapped either way).
import { PG } from "@mmgather/folio";
import { TeardownError } from "./errors.js";
import { mmGetHugeZeroFolio } from "./huge-memory.js";
import type { KvmMmu } from "./kvm.js";
import type { Mm } from "./mm.js";
import { LEVEL_PMD } from "./page-tables.js";
import {
  mkPte,
  mkSwapPte,
  PFNMAP_PTE_BITS,
  PMD_HUGE,
  PTE_CONT,
  PTE_DIRTY,
  PTE_PRESENT,
  PTE_WRITE,
  PTE_YOUNG,
  pmdTableId,
  ptePfn,
  pteSwapEntry,
  ZERO_PTE_BITS,
} from "./pte.js";
import { archSetPtes } from "./pte-view.js";
import type { Rng } from "./rng.js";
import type { SecondaryTlbs } from "./secondary-tlb.js";
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, type Vma } from "./vma.js";

/** Folio sizes to fault in: one order, or a weighted mix (deterministic for a seed). */
export type FolioPolicy =
  | { readonly order: number }
  | { readonly mix: readonly { order: number; weight: number }[] };

/** Fault-in options for one VMA. */
export interface FaultOptions {
  /** Folio sizes. */
  readonly policy: FolioPolicy;
  /** Map PMD-sized folios with one PMD entry (THP) instead of PTEs. */
  readonly pmdMapped?: boolean;
  /** Called with the pages of the VMA walked so far, every 65,536 pages (a progress bar's hook). */
  readonly progress?: (pages: number) => void;
  /** Fraction of file / shmem folios written through this mapping (PTE dirty; COW on private files). */
  readonly dirtyFraction?: number;
  /** Fraction of the VMA's pages to fault in (1 = all; holes otherwise). */
  readonly populate?: number;
  /**
   * Anon VMAs: fraction of the faults that are read faults (default 0). A read fault maps the zero page
   * (one zero PTE per page of the folio it would have allocated) or, where a PMD-sized folio would be
   * PMD-mapped, the huge zero folio.
   */
  readonly readFraction?: number;
}

function pickOrder(policy: FolioPolicy, rng: Rng): number {
  if ("order" in policy) return policy.order;
  let total = 0;
  for (const m of policy.mix) total += m.weight;
  let r = rng.next() * total;
  for (const m of policy.mix) {
    r -= m.weight;
    if (r < 0) return m.order;
  }
  return policy.mix[policy.mix.length - 1].order;
}

function alloc(mm: Mm, order: number, method: string): number {
  try {
    return mm.machine.mem.allocFolio(order);
  } catch (e) {
    throw new TeardownError(
      "ENOMEM",
      "workload",
      method,
      `out of memory allocating an order-${order} folio`,
      { cause: e },
    );
  }
}

function rssIndex(vma: Vma): number {
  return vma.kind === "shmem" ? MM_SHMEMPAGES : MM_FILEPAGES;
}

/** Faults in a VMA with the given folio policy. */
export function faultIn(mm: Mm, vma: Vma, opts: FaultOptions, rng: Rng): void {
  if (vma.kind === "pfnmap") {
    remapPfnRange(mm, vma, opts);
    return;
  }
  const pmdOrder = mm.pt.geo.pmdOrder;
  const populate = opts.populate ?? 1;
  const dirtyFraction = opts.dirtyFraction ?? 0;
  const anon = vma.kind === "anon";
  const readFraction = opts.readFraction ?? 0;
  if (typeof readFraction !== "number" || !(readFraction >= 0 && readFraction <= 1)) {
    throw new TeardownError(
      "BAD_SPEC",
      "workload",
      "faultIn",
      `readFraction must be in [0, 1], got ${String(readFraction)}`,
    );
  }
  if (readFraction > 0 && !anon) {
    throw new TeardownError(
      "BAD_SPEC",
      "workload",
      "faultIn",
      `readFraction applies to anon VMAs only (a read fault of a ${vma.kind} VMA maps its page cache)`,
    );
  }
  if ("order" in opts.policy) checkOrder(opts.policy.order, pmdOrder, anon);
  else for (const m of opts.policy.mix) checkOrder(m.order, pmdOrder, anon);
  let vpn = vma.start;
  const progress = opts.progress;
  let nextReport = vpn + 65536;
  while (vpn < vma.end) {
    if (progress !== undefined && vpn >= nextReport) {
      progress(vpn - vma.start);
      nextReport = vpn + 65536;
    }
    let order = pickOrder(opts.policy, rng);
    const index = vma.pgoff + (vpn - vma.start);
    while (
      order > 0 &&
      (vpn % (1 << order) !== 0 || index % (1 << order) !== 0 || vpn + (1 << order) > vma.end)
    ) {
      order--;
    }
    // alloc_anon_folio tries the allowed orders from high to low: order 1 is not one of them.
    if (order === 1 && anon) order = 0;
    const nr = 1 << order;
    if (populate < 1 && rng.next() >= populate) {
      vpn += nr;
      continue;
    }
    // Drawn only when asked for, so a spec without read faults builds the same image as before.
    if (readFraction > 0 && rng.next() < readFraction) {
      const pmdEmpty =
        order === pmdOrder &&
        opts.pmdMapped === true &&
        mm.pt.entries[mm.pt.pmdTable(vpn, true)]![mm.pt.index(vpn, LEVEL_PMD)] === 0;
      if (pmdEmpty) mapHugeZeroPmd(mm, vma, vpn);
      else mapZeroPtes(mm, vpn, nr);
      vpn += nr;
      continue;
    }
    const dirty = vma.kind !== "anon" && rng.next() < dirtyFraction;
    // A written page of a private file mapping is a private copy (never PMD-mapped); a read one maps
    // the page-cache folio, by PMD when it is PMD-sized (finish_fault → do_set_pmd, v6.18).
    if (order === pmdOrder && opts.pmdMapped === true && !(vma.kind === "file-private" && dirty)) {
      mapPmdFolio(mm, vma, vpn, dirty);
    } else {
      mapPteFolio(mm, vma, vpn, order, dirty);
    }
    vpn += nr;
  }
}

/**
 * remap_pfn_range of a whole pfnmap VMA (the driver's mmap): every page gets a special PTE of its
 * device pfn. Only the defaults of the fault options apply: no folio sizes, no PMD mapping, no holes,
 * no dirtying, no read faults.
 */
function remapPfnRange(mm: Mm, vma: Vma, opts: FaultOptions): void {
  const bad = (field: string, why: string): never => {
    throw new TeardownError("BAD_SPEC", "workload", "faultIn", `${field}: ${why}`);
  };
  const p = opts.policy;
  if (("order" in p && p.order !== 0) || "mix" in p)
    bad("folio", "a pfnmap VMA maps device pfns, not folios (remap_pfn_range maps order-0 PTEs)");
  if (opts.pmdMapped === true) bad("pmdMapped", "remap_pfn_range maps PTEs only (no huge pfnmap here)");
  if ((opts.populate ?? 1) !== 1) bad("populate", "remap_pfn_range maps the whole VMA at mmap time");
  if ((opts.dirtyFraction ?? 0) !== 0) bad("dirtyFraction", "device memory has no page cache to dirty");
  if ((opts.readFraction ?? 0) !== 0) bad("readFraction", "applies to anon VMAs only");
  const dev = mm.machine.deviceFiles.get(vma.mapping);
  if (dev === undefined)
    throw new TeardownError("INVARIANT", "workload", "faultIn", `pfnmap VMA ${vma.id} has no device file`);
  const ptrs = mm.pt.geo.ptrsPerPte;
  for (let vpn = vma.start; vpn < vma.end; ) {
    const t = mm.pt.entries[mm.pt.pteTable(vpn, true)]!;
    const stop = Math.min(vma.end, vpn - (vpn % ptrs) + ptrs);
    for (; vpn < stop; vpn++) {
      t[vpn % ptrs] = mkPte(dev.pfn + vma.pgoff + (vpn - vma.start), PFNMAP_PTE_BITS);
    }
  }
}

function checkOrder(order: number, pmdOrder: number, anon: boolean): void {
  if (!Number.isInteger(order) || order < 0 || order > pmdOrder) {
    throw new TeardownError(
      "BAD_SPEC",
      "workload",
      "faultIn",
      `folio order must be in [0, ${pmdOrder}], got ${order}`,
    );
  }
  if (anon && order === 1) {
    throw new TeardownError(
      "BAD_SPEC",
      "workload",
      "faultIn",
      `anonymous folios of order 1 do not exist (THP_ORDERS_ALL_ANON: anon orders are 0 and 2..${pmdOrder})`,
    );
  }
}

function ensureAnonVma(mm: Mm, vma: Vma): void {
  if (vma.anonVma < 0) vma.anonVma = mm.machine.nextAnonVma++;
}

/** A new anon folio of `order` mapped at `vpn` by PTEs (do_anonymous_page, alloc_anon_folio). */
function mapAnonPtes(mm: Mm, vma: Vma, vpn: number, order: number): void {
  const mem = mm.machine.mem;
  const nr = 1 << order;
  ensureAnonVma(mm, vma);
  const tid = mm.pt.pteTable(vpn, true);
  const head = alloc(mm, order, "faultIn");
  mem.folioSetAnon(head, vma.anonVma, vpn);
  mem.folioAddRmapPtes(head, head, nr);
  if (nr > 1) mem.folioRefAdd(head, nr - 1);
  mem.folioAddLru(head);
  if (vma.locked) mem.mlockFolio(head);
  const t = mm.pt.entries[tid]!;
  const i0 = vpn % mm.pt.geo.ptrsPerPte;
  // set_ptes(mm, addr, pte, entry, nr): the arch may fold the PTEs into contiguous blocks.
  for (let i = 0; i < nr; i++) t[i0 + i] = mkPte(head + i, PTE_WRITE | PTE_DIRTY | PTE_YOUNG);
  archSetPtes(mm, t, vpn - i0, i0, nr, null);
  mm.rss[MM_ANONPAGES] += nr;
}

/** `nr` read faults at `vpn`: do_anonymous_page's zero-page branch, one special PTE each. */
function mapZeroPtes(mm: Mm, vpn: number, nr: number): void {
  const zero = mkPte(mm.machine.myZeroPfn(), ZERO_PTE_BITS);
  const t = mm.pt.entries[mm.pt.pteTable(vpn, true)]!;
  const i0 = vpn % mm.pt.geo.ptrsPerPte;
  for (let i = 0; i < nr; i++) t[i0 + i] = zero;
}

/**
 * A read fault of a PMD-mapped anon range (do_huge_pmd_anonymous_page → set_huge_zero_folio): the huge
 * zero folio, read-only, by one PMD, with a deposited PTE table; no rmap, no rss.
 */
function mapHugeZeroPmd(mm: Mm, vma: Vma, vpn: number): void {
  const pt = mm.pt;
  ensureAnonVma(mm, vma); // vmf_anon_prepare runs before the zero-folio branch
  const pmdId = pt.pmdTable(vpn, true);
  const pi = pt.index(vpn, LEVEL_PMD);
  const deposit = alloc(mm, 0, "faultIn"); // pte_alloc_one
  const head = mmGetHugeZeroFolio(mm);
  setDeposit(mm, pmdId, pi, deposit);
  pt.entries[pmdId]![pi] = mkPte(head, ZERO_PTE_BITS) | PMD_HUGE;
}

/** The page-cache folio of `order` at file index `index`, created (clean, on the LRU) if absent. */
function pageCacheFolio(mm: Mm, vma: Vma, index: number, order: number): number {
  const mem = mm.machine.mem;
  const found = mem.filemapGetFolio(vma.mapping, index);
  if (found >= 0) return found;
  const head = alloc(mm, order, "faultIn");
  mem.filemapAddFolio(vma.mapping, head, index);
  mem.folioAddLru(head);
  // The page cache now holds its own references; drop the allocation's.
  mem.folioPut(head);
  return head;
}

function mapPteFolio(mm: Mm, vma: Vma, vpn: number, order: number, dirty: boolean): void {
  if (vma.kind === "anon") {
    mapAnonPtes(mm, vma, vpn, order);
    return;
  }
  const mem = mm.machine.mem;
  const nr = 1 << order;
  const index = vma.pgoff + (vpn - vma.start);
  const head = pageCacheFolio(mm, vma, index, order);
  if (vma.kind === "file-private" && dirty) {
    // wp_page_copy: each written page becomes a private anon copy; the cache folio stays unmapped.
    for (let i = 0; i < nr; i++) mapAnonPtes(mm, vma, vpn + i, 0);
    return;
  }
  const pfn = head + (index - mem.folioIndex(head));
  const tid = mm.pt.pteTable(vpn, true);
  mem.folioAddRmapPtes(head, pfn, nr);
  mem.folioRefAdd(head, nr);
  if (vma.locked) mem.mlockFolio(head);
  let bits = PTE_YOUNG;
  if (vma.shared) bits |= dirty ? PTE_WRITE | PTE_DIRTY : 0;
  // do_shared_fault → fault_dirty_shared_page: a write fault dirties the page-cache folio too.
  if (vma.shared && dirty) mem.folioSet(head, PG.dirty);
  const t = mm.pt.entries[tid]!;
  const i0 = vpn % mm.pt.geo.ptrsPerPte;
  // set_pte_range → set_ptes of the folio's pages.
  for (let i = 0; i < nr; i++) t[i0 + i] = mkPte(pfn + i, bits);
  archSetPtes(mm, t, vpn - i0, i0, nr, null);
  mm.rss[rssIndex(vma)] += nr;
}

/** A PMD-mapped THP at `vpn` (do_huge_pmd_anonymous_page / do_set_pmd). */
function mapPmdFolio(mm: Mm, vma: Vma, vpn: number, dirty: boolean): void {
  const mem = mm.machine.mem;
  const pt = mm.pt;
  const nr = pt.geo.ptrsPerPte;
  const pmdId = pt.pmdTable(vpn, true);
  const pmd = pt.entries[pmdId]!;
  const pi = pt.index(vpn, LEVEL_PMD);
  if (pmd[pi] !== 0) {
    mapPteFolio(mm, vma, vpn, log2(nr), dirty);
    return;
  }
  let head: number;
  let bits: number;
  if (vma.kind === "anon") {
    ensureAnonVma(mm, vma);
    head = alloc(mm, log2(nr), "faultIn");
    mem.folioSetAnon(head, vma.anonVma, vpn);
    mem.folioAddRmapPmd(head);
    mem.folioAddLru(head);
    // pgtable_trans_huge_deposit: a PTE table kept for a later split, freed by zap_deposited_table.
    setDeposit(mm, pmdId, pi, alloc(mm, 0, "faultIn"));
    bits = PTE_WRITE | PTE_DIRTY | PTE_YOUNG;
    mm.rss[MM_ANONPAGES] += nr;
  } else {
    head = pageCacheFolio(mm, vma, vma.pgoff + (vpn - vma.start), log2(nr));
    mem.folioAddRmapPmd(head);
    mem.folioRefAdd(head, 1);
    bits = PTE_YOUNG | (dirty ? PTE_WRITE | PTE_DIRTY : 0);
    if (dirty) mem.folioSet(head, PG.dirty); // fault_dirty_shared_page
    mm.rss[rssIndex(vma)] += nr;
  }
  if (vma.locked) mem.mlockFolio(head);
  pmd[pi] = mkPte(head, bits) | PMD_HUGE;
}

function setDeposit(mm: Mm, pmdId: number, index: number, pfn: number): void {
  while (mm.deposits.length <= pmdId) mm.deposits.push(null);
  let d = mm.deposits[pmdId];
  if (d === null) {
    d = new Int32Array(mm.pt.ptrs[LEVEL_PMD]).fill(-1);
    mm.deposits[pmdId] = d;
  }
  d[index] = pfn;
}

/**
 * Marks a VMA VM_LOCKED and mlocks each folio it maps once (mlock_fixup → mlock_pte_range →
 * mlock_folio: PG_mlocked, mlock_count + 1).
 */
export function mlockVma(mm: Mm, vma: Vma): void {
  // mlock_fixup: a VM_SPECIAL VMA (VM_PFNMAP) keeps its flags — never VM_LOCKED, nothing to mlock.
  if (vma.kind === "pfnmap") return;
  vma.locked = true;
  const mem = mm.machine.mem;
  const zero = mm.machine.zeroPfn;
  const hugeZero = mm.machine.hugeZeroFolio;
  let last = -1;
  forEachPresent(mm, vma.start, vma.end, (pfn) => {
    // mlock_pte_range: vm_normal_folio is NULL for the zero page, and the huge zero folio is skipped.
    if (pfn === zero || pfn === hugeZero) return;
    const head = mem.folioHead(pfn);
    if (head === last) return;
    last = head;
    mem.mlockFolio(head);
  });
}

/** Calls `fn(pfn, vpn, huge)` for every present leaf entry in [vs, ve) (setup paths only). */
export function forEachPresent(
  mm: Mm,
  vs: number,
  ve: number,
  fn: (pfn: number, vpn: number, huge: boolean) => void,
): void {
  const pt = mm.pt;
  const span = pt.span[0];
  for (let base = Math.floor(vs / span) * span; base < ve; base += span) {
    const pmdId = pt.pmdTable(base, false);
    if (pmdId < 0) continue;
    const e = pt.entries[pmdId]![pt.index(base, LEVEL_PMD)];
    if (e === 0) continue;
    if ((e & PTE_PRESENT) !== 0) {
      fn(ptePfn(e), base, true);
      continue;
    }
    const t = pt.entries[pmdTableId(e)]!;
    const from = Math.max(vs, base) - base;
    const to = Math.min(ve, base + span) - base;
    for (let i = from; i < to; i++) if (t[i] > 0) fn(ptePfn(t[i]), base + i, false);
  }
}

/** fork(): a child mm sharing every private page copy-on-write (dup_mmap → copy_page_range). */
export function forkMm(parent: Mm): Mm {
  if (parent.dead) throw new TeardownError("DEAD_MM", "workload", "fork", `mm ${parent.id} has exited`);
  const machine = parent.machine;
  const mem = machine.mem;
  const child = machine.createMm();
  const pt = parent.pt;
  const cpt = child.pt;
  const span = pt.span[0];
  const zero = machine.zeroPfn;
  for (const v of parent.vmas) {
    const cv: Vma = { ...v, id: machine.nextVmaId++, locked: false };
    child.insertVma(cv);
    if (v.kind === "pfnmap") {
      copyPfnmapPtes(parent, child, v);
      continue;
    }
    // vma_needs_copy: shared mappings without anon pages are refaulted on demand instead, and so is
    // an anon VMA without an anon_vma (it maps nothing but the zero page).
    if (v.shared || (v.kind === "anon" && v.anonVma < 0)) continue;
    for (let base = Math.floor(v.start / span) * span; base < v.end; base += span) {
      const pmdId = pt.pmdTable(base, false);
      if (pmdId < 0) continue;
      const pmd = pt.entries[pmdId]!;
      const pi = pt.index(base, LEVEL_PMD);
      const e = pmd[pi];
      if (e === 0) continue;
      if ((e & PTE_PRESENT) !== 0) {
        // copy_huge_pmd returns at once for a VMA that is not anonymous (a file PMD, here the page
        // cache of a private file mapping): the child refaults it (v6.18 mm/huge_memory.c).
        if (v.kind !== "anon") continue;
        const head = ptePfn(e);
        if (head === machine.hugeZeroFolio) {
          // copy_huge_pmd, is_huge_zero_pmd: mm_get_huge_zero_folio for the child (it never allocates
          // here), the child's deposit, both PMDs write-protected (they already are), the child's old.
          mmGetHugeZeroFolio(child);
          const cpmdId = cpt.pmdTable(base, true);
          cpt.entries[cpmdId]![pi] = e & ~(PTE_WRITE | PTE_YOUNG);
          setDeposit(child, cpmdId, pi, alloc(child, 0, "fork"));
          continue;
        }
        // copy_huge_pmd: folio_get + folio_dup_anon_rmap_pmd, both write-protected, a deposit for the child.
        mem.folioRefAdd(head, 1);
        mem.folioAddRmapPmd(head);
        pmd[pi] = e & ~PTE_WRITE;
        const cpmdId = cpt.pmdTable(base, true);
        cpt.entries[cpmdId]![pi] = e & ~(PTE_WRITE | PTE_YOUNG);
        setDeposit(child, cpmdId, pi, alloc(child, 0, "fork"));
        child.rss[MM_ANONPAGES] += span;
        continue;
      }
      const t = pt.entries[pmdTableId(e)]!;
      const from = Math.max(v.start, base) - base;
      const to = Math.min(v.end, base + span) - base;
      let ct: Int32Array | null = null;
      for (let i = from; i < to; ) {
        const pte = t[i];
        if (pte === 0) {
          i++;
          continue;
        }
        if (ct === null) ct = cpt.entries[cpt.pteTable(base, true)]!;
        if (pte < 0) {
          machine.swap!.swapDuplicate(pteSwapEntry(pte), 1);
          ct[i] = pte;
          child.rss[MM_SWAPENTS]++;
          i++;
          continue;
        }
        const pfn = ptePfn(pte);
        if (pfn === zero) {
          // copy_present_ptes: vm_normal_page is NULL, so __copy_present_ptes copies the PTE alone
          // (read-only already; the child's old): no folio, no rss.
          ct[i] = pte & ~(PTE_WRITE | PTE_YOUNG);
          i++;
          continue;
        }
        // copy_present_ptes: one run of consecutive pages of one folio at a time.
        const head = mem.folioHead(pfn);
        const fend = head + mem.folioNrPages(head);
        let n = 1;
        while (i + n < to && t[i + n] > 0 && ptePfn(t[i + n]) === pfn + n && pfn + n < fend) n++;
        mem.folioAddRmapPtes(head, pfn, n);
        mem.folioRefAdd(head, n);
        const anon = mem.folioTest(head, PG.anon);
        // __copy_present_ptes: wrprotect_ptes in the parent (a whole run keeps its contiguous blocks),
        // set_ptes(pte_mknoncont) in the child, where the arch folds the blocks again.
        for (let k = 0; k < n; k++) {
          const p = t[i + k] & ~PTE_WRITE;
          t[i + k] = p;
          ct[i + k] = p & ~(PTE_YOUNG | PTE_CONT);
        }
        archSetPtes(child, ct, base, i, n, null);
        child.rss[anon ? MM_ANONPAGES : rssIndex(v)] += n;
        i += n;
      }
    }
  }
  return child;
}

/**
 * copy_page_range of a VM_PFNMAP VMA (vma_needs_copy is true): copy_present_ptes finds no normal page
 * and __copy_present_ptes copies each PTE alone — clean and old for the child (VM_SHARED: pte_mkclean;
 * pte_mkold), the parent's untouched; no reference, no rmap, no rss.
 */
function copyPfnmapPtes(parent: Mm, child: Mm, v: Vma): void {
  const pt = parent.pt;
  const cpt = child.pt;
  const span = pt.span[0];
  for (let base = Math.floor(v.start / span) * span; base < v.end; base += span) {
    const tid = pt.pteTable(base, false);
    if (tid < 0) continue;
    const t = pt.entries[tid]!;
    const from = Math.max(v.start, base) - base;
    const to = Math.min(v.end, base + span) - base;
    let ct: Int32Array | null = null;
    for (let i = from; i < to; i++) {
      const pte = t[i];
      if (pte <= 0) continue;
      if (ct === null) ct = cpt.entries[cpt.pteTable(base, true)]!;
      ct[i] = pte & ~(PTE_DIRTY | PTE_YOUNG);
    }
  }
}

/**
 * Reclaim swap-out of about `fraction` of the mm's PTE-mapped anon folios: add_to_swap, unmap from
 * every mm of the fork family (swap PTEs, swap_duplicate), pageout, and then either keep the clean
 * folio in the swap cache or drop it (__remove_mapping). Returns the number of folios swapped out.
 */
export function swapOut(mm: Mm, fraction: number, keepInSwapCache: boolean, rng: Rng): number {
  const machine = mm.machine;
  const swap = machine.swap;
  if (fraction <= 0) return 0;
  if (swap === null)
    throw new TeardownError("BAD_SPEC", "workload", "swapOut", "the machine has no swap device");
  const mem = machine.mem;
  const zero = machine.zeroPfn;
  const heads: number[] = [];
  const vpns: number[] = [];
  for (const v of mm.vmas) {
    if (v.kind !== "anon") continue;
    forEachPresent(mm, v.start, v.end, (pfn, vpn, huge) => {
      // Reclaim never sees the zero page (not on the LRU, not anon) nor a huge PMD here.
      if (huge || pfn === zero) return;
      const head = mem.folioHead(pfn);
      if (pfn === head && mem.folioTest(head, PG.anon) && !mem.folioTest(head, PG.swapcache)) {
        if (rng.next() < fraction) {
          heads.push(head);
          vpns.push(vpn);
        }
      }
    });
  }
  let done = 0;
  for (let k = 0; k < heads.length; k++) {
    const head = heads[k];
    const vpn = vpns[k];
    const nr = mem.folioNrPages(head);
    const mappers = mappersOf(mm, head, vpn, nr);
    if (mappers === null) continue;
    if (swap.slotsFree() < nr) break;
    mem.folioGet(head); // isolate_lru_folio's reference
    const entry = swap.folioAllocSwap(head);
    for (const m of mappers) {
      const t = m.pt.entries[m.pt.pteTable(vpn, false)]!;
      const i0 = vpn % m.pt.geo.ptrsPerPte;
      for (let i = 0; i < nr; i++) t[i0 + i] = mkSwapPte(entry + i);
      swap.swapDuplicate(entry, nr);
      mem.folioRemoveRmapPtes(head, head, nr);
      mem.folioRefSubAndTest(head, nr);
      m.rss[MM_ANONPAGES] -= nr;
      m.rss[MM_SWAPENTS] += nr;
    }
    mem.folioClear(head, PG.dirty); // pageout() wrote it back
    if (!keepInSwapCache) swap.deleteFromSwapCache(head);
    mem.folioPut(head);
    done++;
  }
  return done;
}

/** Every live mm of the fork family mapping all `nr` pages of `head` at `vpn`, or null if not simple. */
function mappersOf(mm: Mm, head: number, vpn: number, nr: number): Mm[] | null {
  const mem = mm.machine.mem;
  const out: Mm[] = [];
  for (const m of mm.machine.mms) {
    if (m.dead) continue;
    const tid = m.pt.pteTable(vpn, false);
    if (tid < 0) continue;
    const t = m.pt.entries[tid]!;
    const i0 = vpn % m.pt.geo.ptrsPerPte;
    let all = true;
    for (let i = 0; i < nr; i++) {
      if (t[i0 + i] <= 0 || ptePfn(t[i0 + i]) !== head + i) {
        all = false;
        break;
      }
    }
    if (all) out.push(m);
  }
  if (out.length === 0 || mem.folioMapcount(head) !== out.length * nr) return null;
  return out;
}

/**
 * A thread of `mm` on `cpu` accesses about `fraction` of its mapped pages: each access walks the page
 * tables (filling the walk cache with the PUD, PMD and PTE table pages) and caches the translation.
 */
export function touch(mm: Mm, cpu: number, fraction: number, rng: Rng): void {
  const tlbs = mm.machine.tlbs;
  if (tlbs === null) throw new TeardownError("BAD_CPU", "workload", "touch", "the machine models no CPUs");
  if (!Number.isInteger(cpu) || cpu < 0 || cpu >= tlbs.nrCpus) {
    throw new TeardownError(
      "BAD_CPU",
      "workload",
      "touch",
      `cpu ${cpu} does not exist (${tlbs.nrCpus} CPUs)`,
    );
  }
  tlbs.cpuMm[cpu] = mm.id;
  const id = mm.id;
  accessMapped(
    mm,
    fraction,
    rng,
    (table) => tlbs.fillWalk(cpu, id, table),
    (vpn, pfn, nr, writable) => tlbs.fillTlb(cpu, id, vpn, pfn, nr, writable),
  );
}

/**
 * A thread of `mm` on `cpu` is inside `get_user_pages_fast` at byte address `addr`
 * (`lockless_pages_from_mm`): interrupts are off, no lock is held, and it reads the page-table pages on
 * the address's path — the PUD and PMD tables, and the PTE table when the PMD points to one — until it
 * re-enables interrupts. Returns the tables it holds.
 */
export function gupFastWalk(mm: Mm, cpu: number, addr: number): number[] {
  const tlbs = mm.machine.tlbs;
  if (tlbs === null)
    throw new TeardownError("BAD_CPU", "workload", "gupFastWalk", "the machine models no CPUs");
  if (!Number.isInteger(cpu) || cpu < 0 || cpu >= tlbs.nrCpus)
    throw new TeardownError(
      "BAD_CPU",
      "workload",
      "gupFastWalk",
      `cpu ${cpu} does not exist (${tlbs.nrCpus} CPUs)`,
    );
  const ps = mm.machine.pageSize;
  if (!Number.isSafeInteger(addr) || addr < 0 || addr % ps !== 0)
    throw new TeardownError(
      "MISALIGNED",
      "workload",
      "gupFastWalk",
      `addr must be page aligned, got ${addr}`,
    );
  const pt = mm.pt;
  const vpn = addr / ps;
  const tables: number[] = [];
  const pmdId = pt.pmdTable(vpn, false);
  if (pmdId >= 0) {
    const pud = pt.tablePfn[pt.pmdParent(vpn)];
    if (pud >= 0) tables.push(pud); // none for a folded PUD level
    tables.push(pt.tablePfn[pmdId]);
    const e = pt.entries[pmdId]![pt.index(vpn, LEVEL_PMD)];
    if (e !== 0 && (e & PTE_PRESENT) === 0) tables.push(pt.tablePfn[pmdTableId(e)]);
  }
  tlbs.cpuMm[cpu] = mm.id;
  tlbs.locklessWalkStart(cpu, tables);
  return tables;
}

/** The machine's devices, checking that `device` is one of them. */
function deviceOf(mm: Mm, device: number, method: string): SecondaryTlbs {
  const dev = mm.machine.tlbs?.secondary ?? null;
  if (dev === null)
    throw new TeardownError("BAD_DEVICE", "workload", method, "the machine models no devices");
  if (!Number.isInteger(device) || device < 0 || device >= dev.nrDevices) {
    throw new TeardownError(
      "BAD_DEVICE",
      "workload",
      method,
      `device ${device} does not exist (${dev.nrDevices} devices)`,
    );
  }
  return dev;
}

/**
 * `iommu_sva_bind_device`: `device` shares `mm`'s page tables from now on (its IOMMU walks them, its
 * TLB caches their translations) and subscribes to the mm's notifiers.
 */
export function bindDevice(mm: Mm, device: number): void {
  if (mm.dead) throw new TeardownError("DEAD_MM", "workload", "bindDevice", `mm ${mm.id} has exited`);
  deviceOf(mm, device, "bindDevice").bind(device, mm.id);
}

/**
 * Bound `device` DMAs to about `fraction` of `mm`'s mapped pages: its IOMMU walks the page tables
 * (caching the table pages) and its TLB caches each translation.
 */
export function touchDevice(mm: Mm, device: number, fraction: number, rng: Rng): void {
  const dev = deviceOf(mm, device, "touchDevice");
  if (dev.deviceMm[device] !== mm.id) {
    throw new TeardownError(
      "BAD_DEVICE",
      "workload",
      "touchDevice",
      `device ${device} is not bound to mm ${mm.id}`,
    );
  }
  accessMapped(
    mm,
    fraction,
    rng,
    (table) => dev.fillWalk(device, table),
    (vpn, pfn, nr) => dev.fillTlb(device, vpn, pfn, nr),
  );
}

/**
 * The KVM guest backed by `mm` touches about `fraction` of its mapped pages: each becomes an spte
 * (a huge host mapping one spte per page). No page reference is taken: KVM holds none for an spte.
 */
export function touchKvm(mm: Mm, kvm: KvmMmu, fraction: number, rng: Rng): void {
  accessMapped(
    mm,
    fraction,
    rng,
    () => {},
    (vpn, pfn, nr) => {
      for (let i = 0; i < nr; i++) kvm.map(vpn + i, pfn + i);
    },
  );
}

/**
 * Accesses about `fraction` of `mm`'s mapped pages in address order: for each, `walk` receives the
 * table pages a hardware walk goes through (PUD, PMD and, below a PMD table, PTE table pages) and
 * `translation` the cached translation (`nr` pages at `vpn` → `pfn`; a huge PMD is one entry).
 */
/** A PTE / PMD a store can go through without a walk: writable and already dirty. */
const WRITABLE_DIRTY = PTE_WRITE | PTE_DIRTY;

function accessMapped(
  mm: Mm,
  fraction: number,
  rng: Rng,
  walk: (tablePfn: number) => void,
  translation: (vpn: number, pfn: number, nr: number, writable: boolean) => void,
): void {
  const pt = mm.pt;
  const span = pt.span[0];
  // An arch with contiguous blocks (arm64 contpte): a PTE with the contiguous bit may be cached as one
  // entry covering its whole block.
  const cont = mm.machine.arch.contPte?.contPtes ?? 1;
  for (const v of mm.vmas) {
    for (let base = Math.floor(v.start / span) * span; base < v.end; base += span) {
      const pmdId = pt.pmdTable(base, false);
      if (pmdId < 0) continue;
      const e = pt.entries[pmdId]![pt.index(base, LEVEL_PMD)];
      if (e === 0) continue;
      // The PUD table page (none when the level is folded: pgtable-nopud.h).
      const pud = pt.tablePfn[pt.pmdParent(base)];
      if ((e & PTE_PRESENT) !== 0) {
        if (rng.next() < fraction) {
          if (pud >= 0) walk(pud);
          walk(pt.tablePfn[pmdId]);
          translation(base, ptePfn(e), span, (e & WRITABLE_DIRTY) === WRITABLE_DIRTY);
        }
        continue;
      }
      const tid = pmdTableId(e);
      const t = pt.entries[tid]!;
      const from = Math.max(v.start, base) - base;
      const to = Math.min(v.end, base + span) - base;
      for (let i = from; i < to; i++) {
        if (t[i] > 0 && (fraction >= 1 || rng.next() < fraction)) {
          if (pud >= 0) walk(pud);
          walk(pt.tablePfn[pmdId]);
          walk(pt.tablePfn[tid]);
          const p = t[i];
          const writable = (p & WRITABLE_DIRTY) === WRITABLE_DIRTY;
          if ((p & PTE_CONT) !== 0 && cont > 1) {
            const off = (base + i) % cont;
            translation(base + i - off, ptePfn(p) - off, cont, writable);
          } else translation(base + i, ptePfn(p), 1, writable);
        }
      }
    }
  }
}

/**
 * mmap: creates a VMA of `kind` covering `size` bytes at `start` (or, if omitted, at the next free
 * address aligned to a PMD table's span). Returns the VMA.
 */
export function mmapVma(mm: Mm, kind: Vma["kind"], size: number, start?: number): Vma {
  if (mm.dead) throw new TeardownError("DEAD_MM", "workload", "mmap", `mm ${mm.id} has exited`);
  if (
    kind !== "anon" &&
    kind !== "file-shared" &&
    kind !== "file-private" &&
    kind !== "shmem" &&
    kind !== "pfnmap"
  ) {
    throw new TeardownError("BAD_SPEC", "workload", "mmap", `unknown VMA kind "${String(kind)}"`);
  }
  const pageSize = mm.machine.pageSize;
  if (!Number.isSafeInteger(size) || size <= 0 || size % pageSize !== 0) {
    throw new TeardownError(
      "MISALIGNED",
      "workload",
      "mmap",
      `size must be a positive multiple of ${pageSize}, got ${size}`,
    );
  }
  const align = mm.pt.span[0];
  let vs: number;
  if (start === undefined) {
    const last = mm.vmas.length > 0 ? mm.vmas[mm.vmas.length - 1].end : align;
    vs = Math.ceil(last / align) * align + align; // leave a one-table gap between VMAs
  } else {
    if (!Number.isSafeInteger(start) || start < 0 || start % pageSize !== 0) {
      throw new TeardownError("MISALIGNED", "workload", "mmap", `start must be page aligned, got ${start}`);
    }
    vs = start / pageSize;
  }
  const ve = vs + size / pageSize;
  if (ve > mm.pt.span[3]) throw new TeardownError("ENOMEM", "workload", "mmap", "address space exhausted");
  const machine = mm.machine;
  // A pfnmap VMA maps its own device file (the driver's), backed by a fresh range of device memory.
  const mapping =
    kind === "anon"
      ? -1
      : kind === "pfnmap"
        ? machine.createDeviceFile(ve - vs)
        : machine.mem.createAddressSpace({ swapBacked: kind === "shmem" });
  const vma: Vma = {
    id: machine.nextVmaId++,
    start: vs,
    end: ve,
    kind,
    mapping,
    pgoff: 0,
    anonVma: -1,
    locked: false,
    shared: kind === "file-shared" || kind === "shmem" || kind === "pfnmap",
  };
  mm.insertVma(vma);
  return vma;
}

/** log2 of a power of two (a folio's page count → its order). */
function log2(n: number): number {
  return 31 - Math.clz32(n);
}
