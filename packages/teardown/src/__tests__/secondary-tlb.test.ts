// Devices sharing a process's page tables (IOMMU SVA) and their TLBs, as mmu_notifier.h drives them:
// filled by the device's own walks, dropped only by mmu_notifier_arch_invalidate_secondary_tlbs for
// a range (walk caches with it) or by mmu_notifier_release at exit.

import { describe, expect, it } from "vitest";
import {
  bindDevice,
  createMachine,
  createRng,
  faultIn,
  isTeardownError,
  mmapVma,
  SecondaryTlbs,
  touchDevice,
} from "../index.js";

describe("SecondaryTlbs", () => {
  it("counts cached translations and walks per pfn; a range invalidation drops the range and every walk", () => {
    const d = new SecondaryTlbs({ nrDevices: 2, pageShift: 12, tlbEntries: 64, walkEntries: 8 }, 1024);
    d.bind(0, 7);
    d.bind(1, 7);
    for (let v = 0; v < 8; v++) d.fillTlb(0, 100 + v, 500 + v, 1);
    d.fillTlb(1, 100, 500, 1);
    d.fillWalk(0, 40);
    d.fillWalk(1, 40);
    expect(d.tlbRefs[500]).toBe(2);
    expect(d.walkRefs[40]).toBe(2);
    expect(d.boundTo(7)).toBe(2);
    // Pages 100..103 of mm 7, in bytes.
    d.invalidate(7, 100 * 4096, 104 * 4096);
    expect(d.invalidations).toBe(2); // one command per bound device
    expect(d.entriesInvalidated).toBe(5);
    expect(d.tlbRefs[500]).toBe(0);
    expect(d.tlbRefs[504]).toBe(1);
    expect(d.walkRefs[40]).toBe(0);
    expect(d.findCached(7, 100, 104)).toBe(-1);
    expect(d.findCached(7, 100, 106)).toBe(104);
    expect(d.cachedPfn(7, 105)).toBe(505);
    // Another mm's invalidation does not reach these devices.
    d.invalidate(8, 0, Number.MAX_SAFE_INTEGER);
    expect(d.invalidations).toBe(2);
    expect(d.tlbRefs[504]).toBe(1);
  });

  it("a huge entry covers every page of its range; eviction drops the old entry's counts", () => {
    const d = new SecondaryTlbs({ nrDevices: 1, pageShift: 12, tlbEntries: 4 }, 2048);
    d.bind(0, 1);
    d.fillTlb(0, 512, 1024, 512);
    expect(d.tlbRefs[1024]).toBe(1);
    expect(d.tlbRefs[1535]).toBe(1);
    expect(d.findCached(1, 700, 701)).toBe(700);
    expect(d.cachedPfn(1, 700)).toBe(1024 + 188);
    // Same slot (512/512 % 4 == 1 == 1 % 4): the huge entry is evicted.
    d.fillTlb(0, 1, 3, 1);
    expect(d.tlbRefs[1024]).toBe(0);
    expect(d.tlbRefs[3]).toBe(1);
  });

  it("release (mmu_notifier_release) drops everything of the mm's devices and detaches them", () => {
    const d = new SecondaryTlbs({ nrDevices: 2, pageShift: 12 }, 256);
    d.bind(0, 1);
    d.bind(1, 2);
    d.fillTlb(0, 10, 20, 1);
    d.fillTlb(1, 10, 30, 1);
    d.fillWalk(0, 5);
    expect(d.release(1)).toBe(1);
    expect(d.deviceMm[0]).toBe(-1);
    expect(d.tlbRefs[20]).toBe(0);
    expect(d.walkRefs[5]).toBe(0);
    expect(d.tlbRefs[30]).toBe(1); // the other mm's device keeps its entry
    expect(d.release(1)).toBe(0);
    expect(d.stateBytes()).toBeGreaterThan(0);
  });
});

describe("bindDevice / touchDevice", () => {
  it("a bound device walks the mm's tables like a CPU does: every mapped page cached at fraction 1", () => {
    const machine = createMachine({ memoryBytes: 16 << 20, cpus: 1, devices: 1 });
    const mm = machine.createMm();
    const v = mmapVma(mm, "anon", 64 << 10);
    faultIn(mm, v, { policy: { order: 0 } }, createRng(1));
    bindDevice(mm, 0);
    touchDevice(mm, 0, 1, createRng(1));
    const d = machine.tlbs!.secondary!;
    expect(d.tlbRefs.reduce((a, n) => a + n, 0)).toBe(16);
    // PUD, PMD and PTE table pages are in its walk cache.
    expect(d.walkRefs.reduce((a, n) => a + (n > 0 ? 1 : 0), 0)).toBe(3);
  });

  it("refuses what does not exist, with BAD_DEVICE", () => {
    const none = createMachine({ memoryBytes: 16 << 20, cpus: 1 });
    const one = createMachine({ memoryBytes: 16 << 20, cpus: 1, devices: 1 });
    const mm = one.createMm();
    const cases: [() => void, RegExp][] = [
      [() => bindDevice(none.createMm(), 0), /models no devices/],
      [() => bindDevice(mm, 1), /device 1 does not exist \(1 devices\)/],
      [() => touchDevice(mm, 0, 1, createRng(1)), /device 0 is not bound to mm/],
      [() => createMachine({ memoryBytes: 16 << 20, cpus: 1, devices: -1 }), /devices must be an integer/],
    ];
    for (const [f, msg] of cases) {
      try {
        f();
        expect.unreachable();
      } catch (e) {
        expect(isTeardownError(e) && e.code).toBe("BAD_DEVICE");
        expect(String(e)).toMatch(msg);
      }
    }
  });
});
