// Two installed copies of the packages (two versions in two node_modules trees, as in a monorepo whose
// apps upgrade at different times) must still recognise each other's errors: every `isXError` guard
// checks a brand, not `instanceof`.
//
//   node scripts/release/two-copies.mjs <folder A> <folder B>
//
// Each error is thrown through the public API of copy A and checked with copy B's guard and vice versa.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

const [dirA, dirB] = process.argv.slice(2);
if (!dirB) throw new Error("usage: two-copies.mjs <folder A> <folder B>");

const NAMES = ["folio", "swapcache", "mmu-gather", "teardown"];

async function load(dir) {
  const req = createRequire(join(dir, "package.json"));
  const copy = { dir, versions: {}, files: {} };
  for (const n of NAMES) {
    const file = req.resolve(`@mmgather/${n}`);
    copy.files[n] = file;
    copy[n] = await import(pathToFileURL(file).href);
    copy.versions[n] = JSON.parse(readFileSync(join(dirname(file), "..", "package.json"), "utf8")).version;
  }
  return copy;
}

function thrown(what, fn) {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error(`${what} did not throw`);
}

/** One error of each class, thrown through copy `c`'s public API. */
function errorsOf(c) {
  const mem = c.folio.createPhysMem({ nrPages: 64 });
  const tlb = c["mmu-gather"].createMmuGather({
    mem,
    mm: c["mmu-gather"].createTlbMm(),
    arch: c["mmu-gather"].defineArch({ name: "generic" }),
    variant: "encoded-page",
  });
  tlb.finish();
  return {
    FolioError: thrown("folioPut on a free pfn", () => mem.folioPut(3)),
    SwapError: thrown("swapDuplicate(0)", () =>
      c.swapcache.createSwapSpace(mem, { devices: [{ nrSlots: 64 }] }).swapDuplicate(0, 1),
    ),
    GatherError: thrown("a finished gather", () => tlb.tlbRemoveTlbEntry(0x1000)),
    ArchConfigError: thrown("noGather + delayRmap", () =>
      c["mmu-gather"].defineArch({ name: "impossible", noGather: true, delayRmap: true }),
    ),
    TeardownError: thrown("munmap of a missing VMA", () =>
      c.teardown.runScenario({ memory: 1 << 20, vmas: [], op: { kind: "munmap", vma: 3, length: 4096 } }),
    ),
  };
}

const guards = (c) => ({
  FolioError: [c.folio.isFolioError, c.folio.FolioError],
  SwapError: [c.swapcache.isSwapError, c.swapcache.SwapError],
  GatherError: [c["mmu-gather"].isGatherError, c["mmu-gather"].GatherError],
  ArchConfigError: [c["mmu-gather"].isArchConfigError, c["mmu-gather"].ArchConfigError],
  TeardownError: [c.teardown.isTeardownError, c.teardown.TeardownError],
});

const A = await load(dirA);
const B = await load(dirB);
const problems = [];
for (const n of NAMES)
  if (A.files[n] === B.files[n]) problems.push(`${n}: both folders resolve to the same file; not two copies`);
console.log(
  `  two copies: A = ${Object.values(A.versions).join("/")} (${dirA}), B = ${Object.values(B.versions).join("/")} (${dirB})`,
);

for (const [from, to] of [
  [A, B],
  [B, A],
]) {
  const errors = errorsOf(from);
  const toGuards = guards(to);
  const fromGuards = guards(from);
  for (const [kind, err] of Object.entries(errors)) {
    const [isOther, OtherClass] = toGuards[kind];
    const [isOwn, OwnClass] = fromGuards[kind];
    if (!(err instanceof OwnClass) || !isOwn(err)) problems.push(`${kind}: not recognised by its own copy`);
    if (err instanceof OtherClass)
      problems.push(`${kind}: instanceof the other copy's class (not two copies?)`);
    if (!isOther(err)) problems.push(`${kind} (${err.code}) from ${from.dir} is not recognised by ${to.dir}`);
    // A guard accepts its own class only.
    for (const [otherKind, [guard]] of Object.entries(toGuards))
      if (otherKind !== kind && guard(err)) problems.push(`${otherKind} guard accepts a ${kind}`);
    if (isOther(new Error(err.message))) problems.push(`${kind} guard accepts a plain Error`);
  }
}
if (problems.length > 0) {
  for (const p of problems) console.error(`  ✗ ${p}`);
  process.exit(1);
}
console.log(
  "  ✓ two copies: FolioError, SwapError, GatherError, ArchConfigError, TeardownError cross-recognised both ways; instanceof is not, and no guard accepts another kind",
);
