// Benchmark of @mmgather/folio: model state per page frame and alloc+map+unmap+free throughput for
// 4K / 64K / 2M folios under each rmap-removal algorithm. Run after build: `pnpm bench`.
import { createPhysMem } from "../dist/index.js";

const NR_PAGES = 1 << 18; // 1 GiB of 4 KiB frames
const mem = createPhysMem({ nrPages: NR_PAGES });
console.log(`model state: ${mem.stateBytesPerPage()} bytes per page frame (${mem.stateBytes()} bytes total)`);

/** One op = alloc a folio, mark it anon, take nr refs, map all pages, unmap with `alg`, drop refs, free. */
function cycle(m, order, alg) {
  const nr = 1 << order;
  const h = m.allocFolio(order);
  m.folioSetAnon(h, 1, 0);
  m.folioRefAdd(h, nr);
  m.folioAddRmapPtes(h, h, nr);
  if (alg === 0) for (let i = 0; i < nr; i++) m.pageRemoveRmap(h + i, false);
  else if (alg === 1) m.folioRemoveRmapRange(h, h, nr);
  else m.folioRemoveRmapPtes(h, h, nr);
  m.folioRefSubAndTest(h, nr);
  m.folioPut(h);
}

const algs = ["6.5 page_remove_rmap", "series folio_remove_rmap_range", "7.x folio_remove_rmap_ptes"];
const sizes = [
  ["4K", 0],
  ["64K", 4],
  ["2M", 9],
];
for (const [label, order] of sizes) {
  const rates = [];
  for (let alg = 0; alg < 3; alg++) {
    const m = createPhysMem({ nrPages: NR_PAGES });
    for (let i = 0; i < 2000; i++) cycle(m, order, alg); // warm-up
    globalThis.gc?.();
    m.resetCounters();
    const budgetPages = 1 << 23;
    const iters = Math.max(2000, budgetPages >> order);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) cycle(m, order, alg);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    m.checkInvariants();
    const c = m.counters;
    const rate = iters / secs;
    rates.push(rate);
    console.log(
      `${label.padEnd(3)} ${algs[alg].padEnd(31)} ${rate.toFixed(0).padStart(9)} ops/s` +
        `  ${((iters << order) / secs / 1e6).toFixed(1).padStart(6)} Mpages/s` +
        `  per op: mapcount ${c.mapcountAtomics / iters}, nr_pages_mapped ${c.nrPagesMappedAtomics / iters},` +
        ` stats ${c.statUpdates / iters}, split-queue locks ${c.splitQueueLockAcquisitions / iters}`,
    );
  }
  console.log(
    `${label.padEnd(3)} ratios vs 6.5: series ${(rates[1] / rates[0]).toFixed(2)}x, 7.x ${(rates[2] / rates[0]).toFixed(2)}x`,
  );
}
