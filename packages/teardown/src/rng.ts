// Models: nothing in the kernel; the deterministic source of workload choices (mulberry32), so a
// scenario with the same seed builds the same mm bit for bit. Omits: nothing.

/** A small seeded PRNG: `next()` in [0, 1), `int(n)` in [0, n). */
export interface Rng {
  next(): number;
  int(n: number): number;
  /** An independent generator in this one's state: both return the same sequence from here on. */
  clone(): Rng;
}

/** mulberry32 over a 32-bit seed. */
export function createRng(seed: number): Rng {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  // createRng(seed) starts from s = seed >>> 0, so a generator at state s is createRng(s).
  return { next, int: (n: number) => Math.floor(next() * n), clone: () => createRng(s) };
}
