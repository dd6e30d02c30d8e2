// Queue + flush throughput of the three variants on the same fixture in the same run.
// Usage: pnpm build (tsc -b) then `pnpm bench` (node --expose-gc bench/run.mjs).

import { createMmuGather, createTlbMm, defineArch, variants } from "../dist/index.js";
import { createGatherFixtureless } from "./fixture.mjs";

const arch = defineArch({ name: "bench-generic", fullFlushCeiling: 33 });
const TOTAL_PAGES = 1 << 15; // 128 MiB of 4 KiB pages per round
const ROUNDS = 5;

function round(variantName, order) {
  const { mem, heads, nr } = createGatherFixtureless(TOTAL_PAGES, order, arch);
  const mm = createTlbMm();
  const g = createMmuGather({ mem, mm, arch, variant: variantName });
  const batch = g.variant.policy.walkBatchesFolioPtes;
  const deferred = g.tlbBatchRmap();
  const t0 = process.hrtime.bigint();
  let addr = 0;
  for (const head of heads) {
    if (batch) {
      g.tlbRemoveTlbEntries(addr, nr);
      g.removeRmap(head, nr);
      if (g.removeFolioPages(head, nr, false)) g.flushMmu();
      addr += nr * 4096;
    } else {
      for (let i = 0; i < nr; i++, addr += 4096) {
        g.tlbRemoveTlbEntry(addr);
        if (!deferred) g.removeRmap(head + i, 1);
        if (g.removePage(head + i, false)) {
          if (deferred) {
            g.enterPtl();
            g.flushRmaps();
            g.leavePtl();
          }
          g.flushMmu();
        }
      }
    }
  }
  if (deferred) {
    g.enterPtl();
    g.flushRmaps();
    g.leavePtl();
  }
  g.finish();
  const ns = Number(process.hrtime.bigint() - t0);
  return ns;
}

const sizes = [
  ["4 KiB", 0],
  ["64 KiB", 4],
  ["2 MiB", 9],
];
const names = Object.keys(variants);
console.log(`pages per round: ${TOTAL_PAGES}, rounds: ${ROUNDS} (best round reported)`);
for (const [label, order] of sizes) {
  const best = {};
  for (const name of names) round(name, order); // warm-up
  for (let r = 0; r < ROUNDS; r++)
    for (const name of names) {
      globalThis.gc?.();
      const ns = round(name, order);
      best[name] = Math.min(best[name] ?? Number.POSITIVE_INFINITY, ns);
    }
  const base = best["encoded-page"];
  for (const name of names) {
    const pagesPerSec = (TOTAL_PAGES / best[name]) * 1e9;
    console.log(
      `${label.padEnd(7)} ${name.padEnd(17)} ${(pagesPerSec / 1e6).toFixed(2).padStart(7)} M pages/s   ratio vs encoded-page ${(base / best[name]).toFixed(2)}x`,
    );
  }
}
