// Models: what an arch's PTE-aware hooks see and do (ArchTlb.setPtes / clearPtes, arm64 contpte): the
// `pte_t *` of one PTE table with the pte_t helpers over pte.ts's encoding (`pte_valid`, `pte_special`,
// `pte_cont` / `pte_mkcont`, dirty / young, `pte_advance_pfn`, `page_folio`), and the TLB maintenance
// such a hook issues outside any mmu_gather — a `set_ptes` at fault, fork or swapoff time whose
// `contpte_try_fold` calls `__flush_tlb_range` straight to the CPUs and the devices sharing the tables.
// Omits: nothing of pte.ts's encoding; the direct maintenance is not part of any teardown report (its
// counters stay on the object).
import { type FolioState, folioHeadTrusted, folioNrPagesTrusted } from "@mmgather/folio/internal";
import {
  createGatherCounters,
  type GatherCounters,
  type MmuGather,
  type PteTableView,
  TLB_FLUSH_ALL,
  type TlbOps,
} from "@mmgather/mmu-gather";
import type { Machine } from "./machine.js";
import type { Mm } from "./mm.js";
import { PTE_CONT, PTE_DIRTY, PTE_PFN_SHIFT, PTE_YOUNG } from "./pte.js";

const EMPTY = new Int32Array(0);

/** Copies every gather counter of `src` into `dst` (the forced-flush record too, not shared). */
function copyGatherCounters(dst: GatherCounters, src: GatherCounters): void {
  const forced = dst.forcedFlushes;
  Object.assign(dst, src);
  dst.forcedFlushes = forced;
  Object.assign(forced, src.forcedFlushes);
}

/**
 * A `PteTableView` (@mmgather/mmu-gather) over one PTE table of the model (an Int32Array of pte.ts entries). One per
 * machine, rebound with `bind` before each hook call: no object per table or per PTE.
 */
export class PteTableAccess implements PteTableView {
  /** The table the view is bound to. */
  t: Int32Array = EMPTY;
  /** Virtual page number of entry 0. */
  base = 0;
  /** Entries written through the view so far (`set` calls): tells a caller whether a hook rewrote any. */
  writes = 0;
  readonly length: number;
  private readonly machine: Machine;
  private readonly fs: FolioState;

  constructor(machine: Machine, fs: FolioState) {
    this.machine = machine;
    this.fs = fs;
    this.length = machine.geometry.ptrsPerPte;
  }

  /** Points the view at table `t`, whose entry 0 maps virtual page `base`. */
  bind(t: Int32Array, base: number): this {
    this.t = t;
    this.base = base;
    return this;
  }

  /**
   * Takes `src`'s write count and base (a copy of `src`'s machine). The view stays unbound: every hook
   * call binds it first.
   */
  copyFrom(src: PteTableAccess): void {
    this.t = EMPTY;
    this.base = src.base;
    this.writes = src.writes;
  }

  get(i: number): number {
    return this.t[i];
  }
  set(i: number, pte: number): void {
    this.t[i] = pte;
    this.writes++;
  }
  valid(pte: number): boolean {
    return pte > 0;
  }
  special(pte: number): boolean {
    // The zero page, or device memory above RAM (VM_PFNMAP): vm_normal_page is NULL for both.
    const pfn = pte >>> PTE_PFN_SHIFT;
    return pfn === this.machine.zeroPfn || pfn >= this.machine.nrPages;
  }
  pfn(pte: number): number {
    return pte >>> PTE_PFN_SHIFT;
  }
  cont(pte: number): boolean {
    return (pte & PTE_CONT) !== 0;
  }
  mkcont(pte: number): number {
    return pte | PTE_CONT;
  }
  mknoncont(pte: number): number {
    return pte & ~PTE_CONT;
  }
  dirty(pte: number): boolean {
    return (pte & PTE_DIRTY) !== 0;
  }
  mkdirty(pte: number): number {
    return pte | PTE_DIRTY;
  }
  mkclean(pte: number): number {
    return pte & ~PTE_DIRTY;
  }
  young(pte: number): boolean {
    return (pte & PTE_YOUNG) !== 0;
  }
  mkyoung(pte: number): number {
    return pte | PTE_YOUNG;
  }
  mkold(pte: number): number {
    return pte & ~PTE_YOUNG;
  }
  advancePfn(pte: number, n: number): number {
    return pte + n * 2 ** PTE_PFN_SHIFT;
  }
  folioStart(pfn: number): number {
    return folioHeadTrusted(this.fs, pfn);
  }
  folioNrPages(pfn: number): number {
    return folioNrPagesTrusted(this.fs, folioHeadTrusted(this.fs, pfn));
  }
}

/**
 * TLB maintenance an arch hook issues outside a gather, for `mm`: range and whole-mm flushes go to every
 * CPU's TLB (CpuTlbs) and, while the mm has notifier subscribers, to the devices sharing its tables.
 * Counts what it did in `counters` (never in a teardown's report).
 */
export class DirectTlbOps implements TlbOps {
  readonly counters: GatherCounters = createGatherCounters();
  private readonly mm: Mm;
  private invlpgbPending = false;

  constructor(mm: Mm) {
    this.mm = mm;
  }

  /** Takes `src`'s counters and pending INVLPGB (the same mm of a copied machine). */
  copyFrom(src: DirectTlbOps): void {
    copyGatherCounters(this.counters, src.counters);
    this.invlpgbPending = src.invlpgbPending;
  }

  flushRange(
    start: number,
    end: number,
    stride: number,
    walkCaches: boolean,
    cpus?: readonly number[],
  ): void {
    this.counters.tlbFlushRange++;
    this.counters.tlbFlushRangeEntries += Math.ceil((end - start) / stride);
    this.mm.machine.tlbs?.tlbInvalidate(this.mm.id, "range", start, end, stride, walkCaches, cpus ?? null);
  }
  flushMm(walkCaches: boolean, cpus?: readonly number[]): void {
    this.counters.tlbFlushMm++;
    this.mm.machine.tlbs?.tlbInvalidate(this.mm.id, "mm", 0, 0, 0, walkCaches, cpus ?? null);
  }
  ipte(addr: number, nr: number): void {
    this.counters.ipte += nr;
    const ps = this.mm.machine.pageSize;
    this.mm.machine.tlbs?.tlbInvalidate(this.mm.id, "ipte", addr, addr + nr * ps, ps, false, null);
  }
  invalidateLazy(nr: number): void {
    this.counters.lazyInvalidations += nr;
    this.mm.tlbMm.flushMm = true;
  }
  idte(): void {
    this.counters.idte++;
    this.mm.tlbMm.flushMm = false;
    this.mm.machine.tlbs?.tlbInvalidate(this.mm.id, "idte", 0, 0, 0, true, null);
  }
  setFlushMm(value: boolean): void {
    this.mm.tlbMm.flushMm = value;
  }
  /** x86 flush_tlb_func on `cpus` with no initiating CPU modelled here: every target is an IPI. */
  flushTlbFunc(
    start: number,
    end: number,
    stride: number,
    walkCaches: boolean,
    cpus: readonly number[],
  ): void {
    const c = this.counters;
    c.tlbIpis += cpus.length;
    c.tlbCpusTargeted += cpus.length;
    for (const l of this.mm.tlbMm.lazyCpus) if (!cpus.includes(l)) c.tlbLazyCpusSkipped++;
    if (end === TLB_FLUSH_ALL) this.flushMm(walkCaches, cpus);
    else this.flushRange(start, end, stride, walkCaches, cpus);
  }
  invlpgb(start: number, end: number, stride: number, walkCaches: boolean): void {
    this.counters.invlpgb++;
    this.invlpgbPending = true;
    this.mm.machine.tlbs?.tlbInvalidate(this.mm.id, "invlpgb", start, end, stride, walkCaches, null);
  }
  tlbsync(): void {
    this.counters.tlbsync++;
    if (this.invlpgbPending) this.counters.tlbCpusTargeted += this.mm.tlbMm.cpumask.length;
    this.invlpgbPending = false;
  }
  tlbiIssued(vaOps: number, rangeOps: number): void {
    this.counters.tlbiVaOps += vaOps;
    this.counters.tlbiRangeOps += rangeOps;
  }
  tlbiLimitExcess(): void {
    this.counters.tlbiLimitExcess++;
  }
  contpteFold(blocks: number): void {
    this.counters.contpteFolds += blocks;
  }
  contpteConvert(fold: boolean, ptes: number, vaOps: number, rangeOps: number): void {
    this.tlbiIssued(vaOps, rangeOps);
    if (fold) this.counters.contpteFolds++;
    else this.counters.contpteUnfolds++;
    this.counters.contpteConvertedPtes += ptes;
    this.counters.contpteConvertTlbis += vaOps + rangeOps;
  }
  contpteClear(blocks: number): void {
    this.counters.contpteBatchedClears++;
    this.counters.contpteBlocksCleared += blocks;
  }
  invalidateSecondaryTlbs(start: number, end: number): void {
    if (!this.mm.tlbMm.hasNotifiers) return;
    this.mm.machine.tlbs?.secondary?.invalidate(this.mm.id, start, end);
  }
}

/**
 * The arch side of `set_ptes()` for `nr` entries the caller just wrote at `t[index]` onwards (`t` the PTE
 * table whose entry 0 maps virtual page `base`): the arch's PTE-aware hook, if it has one, through
 * `tlb` (a set_ptes inside a teardown: its counters) or else straight to the CPUs (`Mm.directTlbOps`).
 * Nothing for an arch without the hook: one null test per set_ptes.
 */
export function archSetPtes(
  mm: Mm,
  t: Int32Array,
  base: number,
  index: number,
  nr: number,
  tlb: MmuGather | null,
): void {
  const hook = mm.machine.arch.setPtes;
  if (hook === null) return;
  const view = mm.machine.pteView.bind(t, base);
  if (tlb !== null) tlb.setPtes(view, index, nr);
  else hook(view, index, nr, mm.directTlbOps());
}
