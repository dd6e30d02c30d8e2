// Models: struct vm_area_struct fields the teardown path reads (include/linux/mm_types.h) and
// mm_counter() (include/linux/mm.h). A "pfnmap" VMA is a driver's shared mapping of device memory
// (VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP, VM_SHARED: remap_pfn_range from the driver's mmap,
// Linux v6.18): raw pfns behind special PTEs, no struct page, and a device file as its mapping.
// Omits: vm_flags beyond the kinds below, anon_vma chains (one anon_vma id shared by a fork family),
// the maple tree (a sorted array here), private (COW) VM_PFNMAP mappings and VM_MIXEDMAP.

/** The five mapping kinds the model builds. */
export type VmaKind = "anon" | "file-shared" | "file-private" | "shmem" | "pfnmap";

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
  /** Address space id (file and shmem page cache, a pfnmap VMA's device file); -1 for anon. */
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

/** VM_PFNMAP: vm_normal_page is NULL for every PTE of the VMA (pte_special), so no PTE maps a folio. */
export function isPfnmap(v: Vma): boolean {
  return v.kind === "pfnmap";
}

/** True when the VMA's private pages are copy-on-write (is_cow_mapping). */
export function isCowMapping(v: Vma): boolean {
  return !v.shared;
}
