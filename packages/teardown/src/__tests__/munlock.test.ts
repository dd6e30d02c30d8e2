// Zapping a VM_LOCKED VMA munlocks its folios (issue: pages used to be freed still mlocked):
// __folio_remove_rmap → munlock_vma_folio → munlock_folio (v6.18 always; v6.5 only for a small folio
// or a PMD mapping) → the per-CPU mlock batch → __munlock_folio (mlock_count, PG_mlocked).
import { PAGEVEC_SIZE } from "@mmgather/folio";
import { describe, expect, it } from "vitest";
import { buildScenario, runBuilt, type ScenarioSpec } from "../index.js";

const MB = 1 << 20;
const spec = (
  variant: "encoded-page" | "contig-range" | "encoded-nr-pages",
  op: "munmap" | "exit",
  order: number,
  pmdMapped = false,
): ScenarioSpec => ({
  memory: 64 << 20,
  variant,
  vmas: [{ kind: "anon", size: 2 * MB, folio: { order }, pmdMapped, mlock: true }],
  op: { kind: op },
});

function run(s: ScenarioSpec) {
  const b = buildScenario(s);
  const r = runBuilt(b, s);
  return { b, r, f: r.counters.folio };
}

describe("munlock on zap of a VM_LOCKED VMA (munlock_vma_folio, the mlock batch)", () => {
  it("mlock counts one per folio per locked VMA", () => {
    const b = buildScenario(spec("encoded-nr-pages", "munmap", 4));
    expect(b.machine.mem.mlockCount(findMapped(b))).toBe(1);
  });

  for (const op of ["munmap", "exit"] as const) {
    it(`${op}, v6.18 (encoded-nr-pages): every folio is munlocked; none is freed still mlocked`, () => {
      for (const [order, pmd, folios] of [
        [0, false, 512],
        [4, false, 32],
        [9, true, 1],
      ] as const) {
        const { b, r, f } = run(spec("encoded-nr-pages", op, order, pmd));
        expect(f.munlockCalls).toBe(folios);
        expect(f.mlockClearedAtFree).toBe(0);
        expect(r.finalState.problems).toEqual([]);
        // The folios still in the mlock batch are freed by the next lru_add_drain (mlock_drain_local).
        const pending = folios % PAGEVEC_SIZE === 0 || order > 0 ? 0 : folios % PAGEVEC_SIZE;
        expect(r.dataFoliosFreed).toBe(folios - pending);
        expect(f.munlockedPages).toBe((folios - pending) << order);
        const before = b.machine.freed.folios;
        b.machine.mem.lruAddDrain();
        expect(b.machine.freed.folios - before).toBe(pending);
      }
    });
  }

  it("v6.5 (encoded-page): small folios and PMD mappings are munlocked, PTE-mapped large ones are not", () => {
    const small = run(spec("encoded-page", "munmap", 0)).f;
    expect(small.munlockCalls).toBe(512);
    expect(small.mlockClearedAtFree).toBe(0);
    // v6.5's free_pages_and_swap_cache starts with lru_add_drain: the batch is drained before release.
    expect(small.munlockedPages).toBe(512);
    const large = run(spec("encoded-page", "munmap", 4)).f;
    expect(large.munlockCalls).toBe(0);
    expect(large.mlockClearedAtFree).toBe(32); // UNEVICTABLE_PGCLEARED at free instead
    const pmd = run(spec("encoded-page", "munmap", 9, true)).f;
    expect(pmd.munlockCalls).toBe(1);
    expect(pmd.mlockClearedAtFree).toBe(0);
  });

  it("the three designs end in the same state once the batches are drained", () => {
    for (const op of ["munmap", "exit"] as const) {
      const digests = (["encoded-page", "contig-range", "encoded-nr-pages"] as const).map((v) => {
        const { b } = run(spec(v, op, 0));
        b.machine.mem.lruAddDrain();
        return b.machine.mem.stateDigest();
      });
      expect(digests[1]).toBe(digests[0]);
      expect(digests[2]).toBe(digests[0]);
    }
  });
});

function findMapped(b: ReturnType<typeof buildScenario>): number {
  const mem = b.machine.mem;
  for (let pfn = 0; pfn < mem.nrPages; pfn++)
    if (!mem.isFree(pfn) && mem.folioHead(pfn) === pfn && mem.folioMapped(pfn) && mem.folioOrder(pfn) === 4)
      return pfn;
  throw new Error("no mapped order-4 folio");
}
