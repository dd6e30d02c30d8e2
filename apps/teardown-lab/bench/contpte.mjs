// One 64 MiB munmap of 64 KiB anonymous folios on arm64 (4 KiB pages), with and without contpte: the
// counters that show the batching and the two estimates. Run after `pnpm build`.
import { createArm64Arch } from "@mmgather/arch-arm64";
import { runScenario } from "@mmgather/teardown";

for (const contpte of [true, false]) {
  const arch = createArm64Arch({ contpte });
  const r = runScenario({
    memory: 256 * 2 ** 20,
    seed: 1,
    cpus: 2,
    arch,
    variant: "encoded-nr-pages",
    vmas: [{ kind: "anon", size: 64 * 2 ** 20, folio: { order: 4 } }],
    op: { kind: "munmap", vma: 0 },
  });
  const g = r.counters.gather;
  console.log(
    `contpte ${contpte}: estimate ${(r.estimate.totalNs / 1e3).toFixed(1)} µs, batched clears ${g.contpteBatchedClears}, blocks ${g.contpteBlocksCleared}, unfolds ${g.contpteUnfolds}, folio_pte_batch PTEs ${r.counters.walk.folioPteBatchPtes}, violations ${r.violations.length}`,
  );
}
