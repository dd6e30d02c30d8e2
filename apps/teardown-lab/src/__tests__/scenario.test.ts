// The scenario format: malformed files through the CLI (exit 2, field named, no stack trace), the
// loader under random JSON, the shipped JSON Schema, and the Scenario → ScenarioSpec mapping.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseScenarioText, ScenarioError, scenarioJsonSchema, validateScenario } from "../scenario.js";
import { loadYaml } from "../scenario-file.js";
import { autoMemoryBytes, toScenarioSpec } from "../spec.js";
import { APP_DIR, runCli } from "./cli-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "teardown-lab-bad-"));
const ok = { vmas: [{ kind: "anon", size: "1M" }], op: { kind: "munmap" } };

// [file name, contents, text the message must contain (field path + what was given / allowed)]
const BAD: [string, string, string][] = [
  ["empty.yaml", "", "empty.yaml is empty: expected a JSON or YAML scenario"],
  ["blank.json", "   \n", "is empty"],
  ["invalid.yaml", "vmas: [\n  - kind: anon\n  size: : 1M", "is not valid YAML"],
  ["invalid.json", '{"vmas": [', "is not valid JSON"],
  ["array.json", "[1, 2]", 'expected an object with "vmas" and "op", got [1,2]'],
  ["scalar.yaml", "42", 'expected an object with "vmas" and "op", got 42'],
  ["no-vmas.json", JSON.stringify({ op: { kind: "exit" } }), "vmas: expected a list of VMAs"],
  ["no-op.json", JSON.stringify({ vmas: ok.vmas }), "op: "],
  ["empty-vmas.json", JSON.stringify({ ...ok, vmas: [] }), "vmas: expected at least one VMA"],
  ["unknown-key.json", JSON.stringify({ ...ok, exec: true }), '(scenario): unknown key(s) "exec"'],
  [
    "unknown-vma-key.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "anon", size: "1M", forks: 2 }] }),
    'vmas[0]: unknown key(s) "forks"',
  ],
  [
    "bad-kind.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "stack", size: "1M" }] }),
    'vmas[0].kind: expected one of anon, file-shared, file-private, shmem, pfnmap; got "stack"',
  ],
  [
    "size-type.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "anon", size: true }] }),
    "vmas[0].size: expected a size such as 4096",
  ],
  [
    "size-negative.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "anon", size: -4096 }] }),
    "vmas[0].size: expected a size",
  ],
  [
    "size-misaligned.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "anon", size: 5000 }] }),
    "vmas[0].size: expected a non-zero multiple of 4K, got 5000",
  ],
  [
    "size-zero.yaml",
    "vmas:\n  - kind: anon\n    size: 0\nop: { kind: exit }\n",
    "vmas[0].size: expected a non-zero multiple of 4K, got 0",
  ],
  [
    "size-absurd.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "anon", size: "1T" }] }),
    "vmas[0].size: expected at most 64G",
  ],
  [
    "size-garbage.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "anon", size: "lots" }] }),
    'vmas[0].size: expected a size such as 4096, "4K"',
  ],
  [
    "folio-3k.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "anon", size: "1M", folio: "12K" }] }),
    "vmas[0].folio: expected a folio size 4K, 8K, 16K … 2M",
  ],
  [
    "folio-4m.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "anon", size: "8M", folio: "4M" }] }),
    "vmas[0].folio: expected a folio size",
  ],
  [
    "folio-mix-key.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "anon", size: "1M", folio: { "4K": 1, "3K": 1 } }] }),
    'vmas[0].folio.3K: expected a folio size 4K … 2M as key, got "3K"',
  ],
  [
    "dirty-range.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "shmem", size: "1M", dirty: 1.5 }] }),
    "vmas[0].dirty: expected a number from 0 to 1; got 1.5",
  ],
  [
    "dirty-anon.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "anon", size: "1M", dirty: 0.5 }] }),
    "vmas[0].dirty: dirty applies to file and shmem VMAs",
  ],
  [
    "read-file.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "file-private", size: "1M", readFraction: 0.5 }] }),
    "vmas[0].readFraction: read faults map the zero page in anon VMAs only",
  ],
  [
    "read-range.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "anon", size: "1M", readFraction: 2 }] }),
    "vmas[0].readFraction: expected a number from 0 to 1; got 2",
  ],
  [
    "swap-file.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "shmem", size: "1M", swap: 0.5 }] }),
    'vmas[0].swap: swap-out applies to anon VMAs only, this one is "shmem"',
  ],
  [
    "pmd-type.yaml",
    "vmas:\n  - kind: anon\n    size: 2M\n    pmd: yes please\nop: { kind: exit }\n",
    'vmas[0].pmd: expected true or false; got "yes please"',
  ],
  [
    "split-outside.json",
    JSON.stringify({ ...ok, vmas: [{ kind: "anon", size: "1M", splitAt: "2M" }] }),
    "vmas[0].splitAt: expected a multiple of 4K strictly inside the VMA",
  ],
  [
    "op-kind.json",
    JSON.stringify({ ...ok, op: { kind: "fork" } }),
    'op.kind: expected one of exit, munmap, dontneed; got "fork"',
  ],
  [
    "op-vma.json",
    JSON.stringify({ ...ok, op: { kind: "munmap", vma: 3 } }),
    "op.vma: expected a VMA index 0..0 or a VMA name, got 3",
  ],
  [
    "op-vma-name.json",
    JSON.stringify({ ...ok, op: { kind: "munmap", vma: "heap" } }),
    'op.vma: expected a VMA index 0..0 or a VMA name, got "heap"',
  ],
  [
    "op-length.json",
    JSON.stringify({ ...ok, op: { kind: "munmap", length: "2M" } }),
    "op.length: expected a non-zero multiple of 4K with offset + length ≤ the VMA size 1M",
  ],
  [
    "op-offset.json",
    JSON.stringify({ ...ok, op: { kind: "munmap", offset: 100 } }),
    "op.offset: expected a multiple of 4K below the VMA size 1M, got 100",
  ],
  ["cpus.json", JSON.stringify({ ...ok, cpus: 1000 }), "cpus: expected an integer from 0 to 64; got 1000"],
  [
    "cpus-float.json",
    JSON.stringify({ ...ok, cpus: 1.5 }),
    "cpus: expected an integer from 0 to 64; got 1.5",
  ],
  [
    "seed.json",
    JSON.stringify({ ...ok, seed: "abc" }),
    'seed: expected an integer from 0 to 4294967295; got "abc"',
  ],
  ["target.json", JSON.stringify({ ...ok, target: "child" }), 'target: target "child" needs fork: true'],
  ["fork-count.json", JSON.stringify({ ...ok, fork: 2 }), "fork: expected true or false; got 2"],
  [
    "concurrent-exit.json",
    JSON.stringify({ ...ok, cpus: 2, op: { kind: "exit" }, concurrentOp: { kind: "munmap" } }),
    "concurrentOp: a concurrent operation needs op.kind munmap or dontneed",
  ],
  [
    "concurrent-kind.json",
    JSON.stringify({ ...ok, cpus: 2, concurrentOp: { kind: "exit" } }),
    "concurrentOp.kind: expected one of munmap, dontneed",
  ],
  ["memory-absurd.json", JSON.stringify({ ...ok, memory: "1T" }), "memory: expected at most 255G"],
  [
    "dup-names.json",
    JSON.stringify({
      ...ok,
      vmas: [
        { name: "a", kind: "anon", size: "1M" },
        { name: "a", kind: "anon", size: "1M" },
      ],
    }),
    'vmas[1].name: expected a unique VMA name, "a" is used twice',
  ],
  [
    "too-small-memory.json",
    JSON.stringify({ ...ok, memory: "64K" }),
    'set a larger "memory" in the scenario',
  ],
];

describe("malformed scenario files exit 2 with a message naming the field", () => {
  it.each(BAD)("%s", (name, text, message) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    const r = runCli(["run", file]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe("");
  });
});

describe("the loader under random input", () => {
  it("never throws anything but a ScenarioError (or returns a valid scenario)", () => {
    const vmaLike = fc.record(
      {
        kind: fc.oneof(fc.constantFrom("anon", "shmem", "file-shared", "file-private"), fc.anything()),
        size: fc.oneof(fc.constantFrom("4K", "1M", 4096, -1, "2M"), fc.anything()),
        folio: fc.oneof(fc.constantFrom("4K", "64K", { "4K": 1 }), fc.anything()),
        dirty: fc.oneof(fc.double(), fc.anything()),
        splitAt: fc.anything(),
      },
      { requiredKeys: [] },
    );
    const scenarioLike = fc.record(
      {
        vmas: fc.oneof(fc.array(vmaLike, { maxLength: 3 }), fc.anything()),
        op: fc.oneof(
          fc.record(
            { kind: fc.constantFrom("exit", "munmap", "dontneed", "x"), vma: fc.anything() },
            { requiredKeys: ["kind"] },
          ),
          fc.anything(),
        ),
        cpus: fc.anything(),
        fork: fc.anything(),
        target: fc.anything(),
        concurrentOp: fc.anything(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(scenarioLike, fc.jsonValue(), fc.anything()), (data) => {
        try {
          const s = validateScenario(data);
          expect(s.vmas.length).toBeGreaterThan(0);
        } catch (e) {
          expect(e).toBeInstanceOf(ScenarioError);
        }
        try {
          parseScenarioText(JSON.stringify(data) ?? "", "fuzz.json", loadYaml);
        } catch (e) {
          expect(e).toBeInstanceOf(ScenarioError);
        }
      }),
      { numRuns: 1500, seed: 7 },
    );
  });
});

describe("scenario.schema.json", () => {
  it("is up to date with the zod schema (regenerate: pnpm --filter teardown-lab schema)", () => {
    const shipped = JSON.parse(readFileSync(join(APP_DIR, "scenario.schema.json"), "utf8"));
    expect(shipped).toEqual(scenarioJsonSchema());
  });
});

describe("Scenario → ScenarioSpec", () => {
  it("maps fields, dontneed → madvise, VMA names → indexes, and sizes memory by the documented rule", () => {
    const s = validateScenario({
      fork: true,
      target: "child",
      cpus: 2,
      touch: 0.5,
      tlbEntries: 512,
      vmas: [
        {
          name: "heap",
          kind: "anon",
          size: "8M",
          folio: { "4K": 1, "64K": 3 },
          swap: 0.1,
          keepInSwapCache: true,
          populate: 0.5,
          splitAt: "1M",
        },
        { name: "data", kind: "file-private", size: "4M", dirty: 0.5 },
      ],
      op: { kind: "dontneed", vma: "data", offset: "1M" },
      concurrentOp: { kind: "munmap", vma: "heap" },
    });
    const spec = toScenarioSpec(s, "contig-range", "generic");
    expect(spec.op).toEqual({ kind: "madvise", vma: 1, offset: 1 << 20, length: undefined });
    expect(spec.concurrentOp).toEqual({ kind: "munmap", vma: 0, offset: 0, length: undefined });
    expect(spec.vmas[0]).toMatchObject({
      folio: {
        mix: [
          { order: 0, weight: 1 },
          { order: 4, weight: 3 },
        ],
      },
      swapFraction: 0.1,
      keepInSwapCache: true,
      populate: 0.5,
      splitAt: 1 << 20,
    });
    expect(spec).toMatchObject({
      fork: true,
      target: "child",
      cpus: 2,
      touch: 0.5,
      tlbEntries: 512,
      variant: "contig-range",
    });
    // (8M + 4M × 1.5) × 5/4 + 16M = 33.5M → 34M; swap: whole largest (64K) folios for 8M × 0.1 = 819.2K,
    // i.e. 13 + 1 of them, plus the header cluster (2M) and 1M.
    expect(spec.memory).toBe(34 << 20);
    expect(autoMemoryBytes(s)).toBe(34 << 20);
    expect(spec.swap).toBe(14 * 65536 + 2 * 2 ** 20 + 2 ** 20);
  });
});
