// Models: PTRS_PER_PTE / PTRS_PER_PMD / PTRS_PER_PUD / PTRS_PER_PGD of x86-64 (4-level) and s390
// (arch/*/include/asm/pgtable*.h). Omits: 5-level paging, folded levels, s390 2 KiB PTE fragments.

/** Entries per table at each of the four levels (index 0 = PTE table). */
export interface PageTableGeometry {
  /** Geometry name ("x86-64", "s390"). */
  readonly name: string;
  /** PTRS_PER_PTE: a PTE table maps this many 4 KiB pages (also the PMD-mapped THP size in pages). */
  readonly ptrsPerPte: number;
  /** PTRS_PER_PMD. */
  readonly ptrsPerPmd: number;
  /** PTRS_PER_PUD. */
  readonly ptrsPerPud: number;
  /** PTRS_PER_PGD. */
  readonly ptrsPerPgd: number;
}

/** x86-64 4-level paging: 512 entries at every level (2 MiB per PTE table). */
export const X86_64_GEOMETRY: PageTableGeometry = Object.freeze({
  name: "x86-64",
  ptrsPerPte: 512,
  ptrsPerPmd: 512,
  ptrsPerPud: 512,
  ptrsPerPgd: 512,
});

/** s390: 256-entry page tables (1 MiB segments), 2048-entry segment and region tables. */
export const S390_GEOMETRY: PageTableGeometry = Object.freeze({
  name: "s390",
  ptrsPerPte: 256,
  ptrsPerPmd: 2048,
  ptrsPerPud: 2048,
  ptrsPerPgd: 2048,
});

/** log2 of a power of two. */
export function log2(n: number): number {
  return 31 - Math.clz32(n);
}
