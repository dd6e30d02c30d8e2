// Models: struct vm_area_struct fields the teardown path reads (include/linux/mm_types.h) and
// mm_counter() (include/linux/mm.h). Omits: vm_flags beyond the kinds below, anon_vma chains
// (one anon_vma id shared by a fork family), the maple tree (a sorted array here).

/** The four mapping kinds the model builds. */
export type VmaKind = "anon" | "file-shared" | "file-private" | "shmem";

/** Index of each rss counter (`enum { MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES }`). */
export const MM_FILEPAGES = 0;
export const MM_ANONPAGES = 1;
export const MM_SWAPENTS = 2;
export const MM_SHMEMPAGES = 3;
/** NR_MM_COUNTERS. */
export const NR_MM_COUNTERS = 4;

/** One VMA. Addresses are virtual page numbers (byte address >> PAGE_SHIFT) internally. */
export interface Vma {
  /** Stable id (unique per machine). */
  readonly id: number;
  /** First page (vm_start >> PAGE_SHIFT). */
  start: number;
  /** One past the last page (vm_end >> PAGE_SHIFT). */
  end: number;
  /** Mapping kind. */
  readonly kind: VmaKind;
  /** Page-cache address space id (file and shmem); -1 for anon. */
  readonly mapping: number;
  /** File page index of `start` (vm_pgoff). */
  pgoff: number;
  /** anon_vma id shared by a fork family; -1 until the VMA has anon pages. */
  anonVma: number;
  /** VM_LOCKED. */
  locked: boolean;
  /** VM_SHARED. */
  readonly shared: boolean;
}

/** True when the VMA's private pages are copy-on-write (is_cow_mapping). */
export function isCowMapping(v: Vma): boolean {
  return !v.shared;
}
