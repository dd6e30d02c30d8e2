import { createPhysMem, type PhysMem, type PhysMemConfig } from "../index.js";

/** Fresh memory with counters zeroed. */
export function mem(config: Partial<PhysMemConfig> = {}): PhysMem {
  return createPhysMem({ nrPages: 4096, ...config });
}

/** Allocate an anon folio of `order`, map all its pages by PTE, with one reference per PTE plus the allocation's. */
export function mappedAnon(m: PhysMem, order: number, opts: { memcg?: number; node?: number } = {}): number {
  const h = m.allocFolio(order, opts);
  m.folioSetAnon(h, 7, h);
  const nr = 1 << order;
  m.folioRefAdd(h, nr);
  m.folioAddRmapPtes(h, h, nr);
  return h;
}

/** Allocate `n` small folios in memcg `memcg`, put them on the LRU, drain, reset counters. */
export function lruSmall(m: PhysMem, n: number, memcg = 0): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const h = m.allocFolio(0, { memcg });
    m.folioAddLru(h);
    out.push(h);
  }
  m.lruAddDrain();
  return out;
}

/** Allocates `n` folios of `order` (unmapped, refcount 1) and returns their heads. */
export function allocMany(m: PhysMem, order: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(m.allocFolio(order));
  return out;
}

/** The code, method and message of the typed refusal `f` throws (fails the test when it throws none). */
export function refusal(f: () => void): { code: string; method: string; message: string } {
  try {
    f();
  } catch (e) {
    const x = e as { code: string; method: string; message: string };
    return { code: x.code, method: x.method, message: x.message };
  }
  throw new Error("expected a refusal");
}

/** How much each of the counters `keys` grew while `f` ran. */
export function counterDelta<K extends keyof PhysMem["counters"]>(
  m: PhysMem,
  keys: readonly K[],
  f: () => void,
): Record<K, number> {
  const before = keys.map((k) => m.counters[k] as number);
  f();
  const out = {} as Record<K, number>;
  keys.forEach((k, i) => {
    out[k] = (m.counters[k] as number) - before[i];
  });
  return out;
}
