// teardown-lab bpftrace / compare-counts: the generated program counts every probed function inside
// the operation's window only, parses with bpftrace's own parser where bpftrace is installed, and its
// output reads back next to the model's counters.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bpftraceProgram, CountsFileError, compareCounts, PROBED, parseCounts } from "../bpftrace.js";
import { PRESETS } from "../presets.js";
import { runOne } from "../run.js";
import { validateScenario } from "../scenario.js";
import { runCli } from "./cli-helpers.js";

const scenario = (op: "munmap" | "exit" | "dontneed") =>
  validateScenario(PRESETS["munmap-1g"].build({ size: "8M", folio: "64K", op }), "preset");

/** bpftrace output with these counts (only non-zero keys, as bpftrace prints them). */
function output(calls: Record<string, number>, windows = 1): string {
  const lines = [`@windows: ${windows}`, ""];
  for (const [fn, n] of Object.entries(calls)) if (n > 0) lines.push(`@calls[${fn}]: ${n}`);
  return `Attaching 17 probes...\n^C\n${lines.join("\n")}\n`;
}

describe("the generated program", () => {
  it("opens a window on the operation's own syscall and length, and counts each function inside it", () => {
    const m = bpftraceProgram(scenario("munmap"));
    expect(m).toContain("tracepoint:syscalls:sys_enter_munmap /args->len == 8388608/ { @in[tid] = 1;");
    expect(m).toContain("tracepoint:syscalls:sys_exit_munmap /@in[tid]/ { delete(@in[tid]); }");
    for (const p of PROBED) expect(m).toContain(`kprobe:${p.fn} /@in[tid]/ { @calls["${p.fn}"] = count(); }`);
    const d = bpftraceProgram(scenario("dontneed"));
    expect(d).toContain("/args->len_in == 8388608 && args->behavior == 4/");
    const e = bpftraceProgram(scenario("exit"));
    expect(e).toContain("kprobe:exit_mmap /pid == $1/");
    expect(e).toContain("kretprobe:exit_mmap /@in[tid]/");
  });

  const bpftrace = spawnSync("bpftrace", ["--version"], { encoding: "utf8" });
  const have = bpftrace.status === 0;
  if (!have)
    console.log("skipping the bpftrace parser check: bpftrace is not installed (apt-get install bpftrace)");
  it.skipIf(!have)("parses with bpftrace's parser (bpftrace -d); a broken program does not", () => {
    const dir = mkdtempSync(join(tmpdir(), "bt-"));
    const check = (text: string) => {
      const f = join(dir, "p.bt");
      writeFileSync(f, text);
      const r = spawnSync("bpftrace", ["-d", f], { encoding: "utf8", timeout: 30_000 });
      return `${r.stdout}${r.stderr}`;
    };
    // exit uses kprobes only: the whole AST comes out (attaching would fail here: no kprobes).
    const e = check(bpftraceProgram(scenario("exit")));
    expect(e).toContain("AST after: parser");
    expect(e).not.toMatch(/syntax error|ERROR: .*p\.bt/);
    // munmap / dontneed: the parser runs; only the tracepoint lookup can fail on a kernel without
    // syscall tracepoints, never the syntax.
    for (const op of ["munmap", "dontneed"] as const) {
      const out = check(bpftraceProgram(scenario(op)));
      expect(out).not.toMatch(/syntax error/);
      for (const l of out.split("\n").filter((x) => /ERROR: /.test(x) && /p\.bt/.test(x)))
        expect(l).toMatch(/tracepoint not found: syscalls:sys_enter_(munmap|madvise)/);
    }
    expect(check(bpftraceProgram(scenario("exit")).replace("count();", "count(;"))).toMatch(/syntax error/);
  });
});

describe("compare-counts", () => {
  const s = scenario("munmap");
  const model = runOne(s, "encoded-nr-pages", "generic").result.counters;
  /** What a kernel that matched the model exactly would print. */
  const exact = Object.fromEntries(
    PROBED.map((p) => [
      p.fn,
      p.fn.startsWith("folio_lruvec_lock") && p.fn !== "folio_lruvec_lock_irqsave"
        ? 0
        : p.counters.reduce((a, c) => a + (model[c] ?? 0), 0),
    ]),
  );

  it("reads bpftrace's map output and pairs each function with the model's counters", () => {
    const k = parseCounts(output(exact), "f");
    expect(k.windows).toBe(1);
    const rows = compareCounts(k, model);
    for (const r of rows) expect(r.kernel).toBe(r.model);
    // The three lruvec lock helpers are one model counter: one row, their calls summed.
    const lru = rows.find((r) => r.counters.includes("folio.lruvecLockAcquisitions"))!;
    expect(lru.fn).toBe("folio_lruvec_lock_irqsave + folio_lruvec_lock_irq + folio_lruvec_lock");
    const k2 = parseCounts(output({ ...exact, folio_lruvec_lock: 3, folio_lruvec_lock_irqsave: 2 }), "f");
    expect(compareCounts(k2, model).find((r) => r.fn === lru.fn)!.kernel).toBe(5);
    expect(model["gather.rmapCallsImmediate"]).toBeGreaterThan(0);
    expect(rows.find((r) => r.fn === "folio_remove_rmap_ptes")!.model).toBe(
      model["gather.rmapCallsImmediate"] + model["gather.rmapCallsDelayed"],
    );
  });

  it("refuses output that is not a teardown-lab program's, naming the line", () => {
    expect(() => parseCounts("@calls[folio_remove_rmap_ptes]: 3\n", "f")).toThrow(CountsFileError);
    expect(() => parseCounts("@windows: 1\n@calls[vfs_read]: 3\n", "out.txt")).toThrow(
      "out.txt:2: vfs_read is not a function teardown-lab bpftrace counts",
    );
  });

  it("the CLI prints the comparison, and exits 2 on a bad file", () => {
    const dir = mkdtempSync(join(tmpdir(), "counts-"));
    const f = join(dir, "out.txt");
    writeFileSync(f, output({ ...exact, tlb_flush_mmu: exact.tlb_flush_mmu + 1 }, 2));
    const r = runCli([
      "compare-counts",
      "--preset",
      "munmap-1g",
      "--size",
      "8M",
      "--folio",
      "64K",
      "--counts",
      f,
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(
      "Kernel counts (2 operation windows traced) next to the model's encoded-nr-pages counters:",
    );
    expect(r.stdout).toMatch(/^tlb_flush_mmu\s+2\s+1\s+gather\.flushMmuCalls$/m);
    expect(r.stdout).toContain(`${PROBED.length - 2 - 1} of ${PROBED.length - 2} rows equal.`);
    const bad = runCli(["compare-counts", "--preset", "munmap-1g", "--counts", join(dir, "missing.txt")]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/missing\.txt: cannot read it \(ENOENT\)/);
    const prog = runCli(["bpftrace", "--preset", "munmap-1g", "--size", "8M", "--op", "dontneed"]);
    expect(prog.status).toBe(0);
    expect(prog.stdout).toContain("sys_enter_madvise");
  });
});
