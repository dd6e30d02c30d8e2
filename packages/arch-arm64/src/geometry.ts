// Models: the arm64 page-table geometry of arch/arm64/include/asm/pgtable-hwdef.h and Kconfig as of
// Linux v6.18 (Nov 2025) for the three translation granules, with a 48-bit user address space:
//   PAGE_SHIFT              12 (4K)      14 (16K)      16 (64K)
//   PTRS_PER_PTE / PMD      512          2048          8192          (1 << (PAGE_SHIFT - 3))
//   HPAGE_PMD_ORDER         9 (2 MiB)    11 (32 MiB)   13 (512 MiB)
//   CONFIG_PGTABLE_LEVELS   4            4             3             ((VA_BITS - 4) / (PAGE_SHIFT - 3))
//   PTRS_PER_PUD            512          2048          1 (folded)
//   PTRS_PER_PGD            512          2             64            (1 << (VA_BITS - PGDIR_SHIFT))
//   TASK_SIZE_64            2^48
// 48 bits is what `vabits_actual` is on a CPU without FEAT_LPA2 / FEAT_LVA (Neoverse N1, the Ampere
// Altra of the cost profile): v6.18's default ARM64_VA_BITS_52 only adds a level (folded at boot) or
// top-level entries there. MAX_PAGE_ORDER (ARCH_FORCE_MAX_ORDER: 10, 11, 13) is the folio layer's
// default for these PMD orders.
// Omits: 39/42/47-bit VA configurations, 52-bit VA on LPA2 / LVA hardware (five levels with 4K pages).

import type { ArchGeometry } from "@mmgather/mmu-gather";
import { ArchConfigError } from "@mmgather/mmu-gather";

/** An arm64 translation granule: the base page size. */
export type Arm64PageSize = "4K" | "16K" | "64K";

const TASK_SIZE_48 = 2 ** 48;

const GEOMETRY: Readonly<Record<Arm64PageSize, ArchGeometry>> = Object.freeze({
  "4K": Object.freeze({
    pageShift: 12,
    ptrsPerPte: 512,
    pmdOrder: 9,
    ptrsPerPmd: 512,
    ptrsPerPud: 512,
    ptrsPerPgd: 512,
    taskSize: TASK_SIZE_48,
  }),
  "16K": Object.freeze({
    pageShift: 14,
    ptrsPerPte: 2048,
    pmdOrder: 11,
    ptrsPerPmd: 2048,
    ptrsPerPud: 2048,
    ptrsPerPgd: 2,
    taskSize: TASK_SIZE_48,
  }),
  "64K": Object.freeze({
    pageShift: 16,
    ptrsPerPte: 8192,
    pmdOrder: 13,
    ptrsPerPmd: 8192,
    ptrsPerPud: 1,
    ptrsPerPgd: 64,
    taskSize: TASK_SIZE_48,
  }),
});

/** The page-table geometry of an arm64 granule with a 48-bit user address space. */
export function arm64Geometry(pageSize: Arm64PageSize): ArchGeometry {
  const g = GEOMETRY[pageSize];
  if (!Object.hasOwn(GEOMETRY, pageSize) || g === undefined)
    throw new ArchConfigError(
      "BAD_GEOMETRY",
      "arch-arm64",
      "arm64Geometry",
      `arm64 has 4K, 16K and 64K pages, not ${JSON.stringify(pageSize)}`,
    );
  return g;
}
