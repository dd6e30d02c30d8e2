// Models: the x86-64 / s390 / arm64 software view of a PTE (arch/*/include/asm/pgtable.h): present pfn
// with dirty/young/write bits (and arm64's contiguous bit), a swap entry, a migration entry, or none.
// Omits: protection keys, soft-dirty, uffd-wp markers, device / hwpoison entries, the real hardware bit
// positions, the dirty / young bits a migration entry may carry (migration_entry_supports_ad).
//
// One PTE is one Int32 slot:
//   0            pte_none
//   > 0          present: pfn << PTE_PFN_SHIFT | PTE_* bits (PTE_PRESENT always set)
//   < 0          swap entry: -(entry + 1), entry from @mmgather/swapcache swpEntry(); a migration entry
//                is one whose type is SWP_MIGRATION_READ or SWP_MIGRATION_WRITE and whose offset is a pfn
// A PMD slot uses the same present encoding plus PMD_HUGE for a PMD-mapped THP (or the huge zero
// folio); a PMD slot that points to a PTE table holds (tableId + 1) << 1 (bit 0 clear, so never
// "present"). A zero-page PTE is a present entry whose pfn is the machine's zero page (no special bit).

/** Entry maps a page. */
export const PTE_PRESENT = 1;
/** Writable (cleared in both parent and child by fork's COW write-protect). */
export const PTE_WRITE = 2;
/** Hardware dirty bit: the page was written through this mapping. */
export const PTE_DIRTY = 4;
/** Hardware accessed bit. */
export const PTE_YOUNG = 8;
/** PMD-level leaf (pmd_trans_huge); only in PMD slots. */
export const PMD_HUGE = 16;
/**
 * The contiguous bit (arm64 PTE_CONT); only in PTE slots, where the PMD_HUGE bit is free. Set only by an
 * arch with contiguous blocks (`ArchTlb.contPte`), through its set_ptes hook: the entry belongs to a
 * naturally aligned block of CONT_PTES entries that map one run of one folio, cached as one TLB entry.
 */
export const PTE_CONT = 16;
/** Shift of the pfn inside a present entry. */
export const PTE_PFN_SHIFT = 5;
/** Largest pfn a present entry can hold (the int32 stays positive). */
export const PTE_MAX_PFN = (1 << (31 - PTE_PFN_SHIFT)) - 1;

/**
 * Bits of a zero-page PTE (do_anonymous_page's read fault, __split_huge_zero_page_pmd): read-only,
 * clean, accessed (x86's vm_page_prot has _PAGE_ACCESSED). Its pfn, the machine's `zeroPfn`, is what
 * makes it special (pte_special: vm_normal_page returns NULL for it).
 */
export const ZERO_PTE_BITS = PTE_YOUNG;

/**
 * Bits of a VM_PFNMAP PTE (remap_pfn_range → remap_pte_range: pte_mkspecial(pfn_pte(pfn, prot)) with a
 * shared writable mapping's vm_page_prot): writable, accessed, clean. The model has no special bit:
 * the VMA kind says vm_normal_page is NULL (every PTE of a VM_PFNMAP VMA is special), and the pfn lies
 * above RAM (machine.ts).
 */
export const PFNMAP_PTE_BITS = PTE_WRITE | PTE_YOUNG;

/** Present entry for `pfn` with `bits`. */
export function mkPte(pfn: number, bits: number): number {
  return (pfn << PTE_PFN_SHIFT) | bits | PTE_PRESENT;
}
/** pfn of a present entry. */
export function ptePfn(pte: number): number {
  return pte >>> PTE_PFN_SHIFT;
}
/** Swap-format entry for a swap entry value. */
export function mkSwapPte(entry: number): number {
  return -entry - 1;
}
/** The swap entry of a swap-format entry. */
export function pteSwapEntry(pte: number): number {
  return -pte - 1;
}
/** PMD slot pointing to a PTE table. */
export function mkPmdTable(tableId: number): number {
  return (tableId + 1) << 1;
}
/** Table id a (non-huge, non-none) PMD slot points to. */
export function pmdTableId(pmd: number): number {
  return (pmd >>> 1) - 1;
}

/**
 * Swap types of migration entries (include/linux/swap.h: the types above MAX_SWAPFILES that
 * make_readable_migration_entry / make_writable_migration_entry use, the offset holding the pfn). The
 * kernel's numbers depend on its config (hwpoison, device-private and marker types sit around them);
 * here they are the top two of the 5-bit type, which no swap device of the model uses (a machine has
 * one, type 0). SWP_MIGRATION_READ_EXCLUSIVE is not modelled (no PageAnonExclusive here): a read-only
 * anon PTE becomes a plain readable entry.
 */
export const SWP_MIGRATION_READ = 30;
/** A migration entry that was writable (is_writable_migration_entry). */
export const SWP_MIGRATION_WRITE = 31;
const SWP_TYPE_SHIFT = 26;

/** A migration entry for page `pfn`, writable or not (make_{writable,readable}_migration_entry). */
export function mkMigrationPte(pfn: number, writable: boolean): number {
  const type = writable ? SWP_MIGRATION_WRITE : SWP_MIGRATION_READ;
  return mkSwapPte(((type << SWP_TYPE_SHIFT) | pfn) >>> 0);
}
/** The entry is a migration entry (is_migration_entry of a non-present, non-none PTE). */
export function isMigrationPte(pte: number): boolean {
  return pte < 0 && pteSwapEntry(pte) >>> SWP_TYPE_SHIFT >= SWP_MIGRATION_READ;
}
/** A migration entry that was made from a writable PTE. */
export function isWritableMigrationPte(pte: number): boolean {
  return pte < 0 && pteSwapEntry(pte) >>> SWP_TYPE_SHIFT === SWP_MIGRATION_WRITE;
}
/** The pfn a migration entry points to (pfn_swap_entry_to_page). */
export function migrationPtePfn(pte: number): number {
  return pteSwapEntry(pte) & ((1 << SWP_TYPE_SHIFT) - 1);
}
