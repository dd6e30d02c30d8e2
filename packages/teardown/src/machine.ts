// Models: the machine a process runs on — physical memory (PhysMem), swap devices (SwapSpace), the
// CPUs with their TLBs, and the arch adapter (asm/tlb.h); the shared zero page (ZERO_PAGE /
// my_zero_pfn) and the huge zero folio with its huge_zero_refcount (get_huge_zero_folio /
// put_huge_zero_folio, mm/huge_memory.c of Linux v6.18, default config: not
// CONFIG_PERSISTENT_HUGE_ZERO_FOLIO). Both are real folios, allocated the first time a read fault
// needs them and never freed. Omits: NUMA placement, memcg limits, the huge zero folio's shrinker
// (which would free it once only its own reference is left), per-node zero pages (MIPS / s390
// colouring of my_zero_pfn).
// Device memory (a PCI BAR, a device's DMA buffer) that drivers map into processes with
// remap_pfn_range (VM_PFNMAP VMAs): `deviceBytes` of pfns directly above RAM, [nrPages, nrPages +
// nrDevicePages). They are no folios: PhysMem never sees them (no refcount, no rmap, never freed to the
// allocator); only the per-pfn typed arrays of the CPU and device TLB models (and the checker's) are
// sized to cover them, so a cached translation to device memory is one array read like any other.
// Each pfnmap VMA created by mmap claims the next free range for its own device file (bump allocation;
// a range is never reused).
import { genericArch } from "@mmgather/arch-generic";
import { createPhysMem, type PcpPolicy, type PhysMem, type RmapPolicy } from "@mmgather/folio";
import { folioState } from "@mmgather/folio/internal";
import { type ArchGeometry, type ArchTlb, createTlbMm, type GatherEventSink } from "@mmgather/mmu-gather";
import { createSwapSpace, type SwapSpace } from "@mmgather/swapcache";
import { Checker, type TrailEvent, type TrailEventSink } from "./checker.js";
import { CpuTlbs } from "./cpu-tlb.js";
import { TeardownError } from "./errors.js";
import { KvmMmu } from "./kvm.js";
import { Mm } from "./mm.js";
import { sameGeometry } from "./page-tables.js";
import { PTE_MAX_PFN } from "./pte.js";
import { PteTableAccess } from "./pte-view.js";
import { TableFreeRcu } from "./rcu.js";
import { SecondaryTlbs } from "./secondary-tlb.js";
import type { Vma } from "./vma.js";

/** One VMA in a file's `i_mmap` tree, with the mm it belongs to. */
export interface IMmapEntry {
  readonly mm: Mm;
  readonly vma: Vma;
}

/** How to build a machine. */
export interface MachineConfig {
  /** Physical memory in bytes (a multiple of the arch's page size). */
  readonly memoryBytes: number;
  /**
   * Device memory drivers can map with VM_PFNMAP VMAs, in bytes (a multiple of the page size; default
   * 0): pfns above RAM, outside the page allocator.
   */
  readonly deviceBytes?: number;
  /** Swap space in bytes (0 or omitted: no swap device). */
  readonly swapBytes?: number;
  /** Arch adapter (default: `genericArch`). */
  readonly arch?: ArchTlb;
  /** CPUs with TLBs (omitted or 0: no CPU model, no TLB-based checks). */
  readonly cpus?: number;
  /** TLB entries per CPU (default 2048). */
  readonly tlbEntries?: number;
  /**
   * Devices that can share an mm's page tables through their IOMMU (shared virtual addressing), each
   * with its own TLB (default 0). Needs CPUs and an arch whose flush invalidates secondary TLBs.
   */
  readonly devices?: number;
  /** Walk-cache entries per CPU (default 64). */
  readonly walkEntries?: number;
  /** Run the safety checker (default: true when CPUs are modelled). */
  readonly checker?: boolean;
  /** Events kept in a violation's trail (default 32). */
  readonly trailLength?: number;
  /**
   * Page-allocator free-side rules of the kernel the machine runs (default "v6.5"; see
   * `PhysMemConfig.pcpPolicy`): a property of the machine, not of the gather variant.
   */
  readonly pcpPolicy?: PcpPolicy;
  /** v6.7 policy: PCPF_FREE_HIGH_BATCH (LLC slice per CPU > 3 × batch pages; default false). */
  readonly pcpFreeHighBatch?: boolean;
  /**
   * Deferred-split rule of the 7.x-style rmap (`PhysMemConfig.rmapPolicy`, default "v6.18"). Scenarios
   * set it from the nr-pages variant's `policy.kernel`.
   */
  readonly rmapPolicy?: RmapPolicy;
}

/** The smallest PTE table the walk supports (the model's table-id encoding needs 16 entries or more). */
const MIN_PTRS_PER_PTE = 16;

/** Physical memory, swap, CPUs, arch and the mms living on them. */
export class Machine {
  readonly mem: PhysMem;
  readonly swap: SwapSpace | null;
  readonly arch: ArchTlb;
  /** The arch adapter's page-table geometry: the only one the model uses. */
  readonly geometry: ArchGeometry;
  /** `PAGE_SHIFT` of the arch (from its geometry). */
  readonly pageShift: number;
  /** `PAGE_SIZE` in bytes (2 ** pageShift). */
  readonly pageSize: number;
  readonly nrPages: number;
  /** Pages of device memory: pfns [nrPages, nrPages + nrDevicePages) (`MachineConfig.deviceBytes`). */
  readonly nrDevicePages: number;
  /** The first device pfn no device file has claimed yet. */
  private nextDevicePfn: number;
  /** Each device file's pfn range (file index 0 maps `pfn`), by mapping id. */
  readonly deviceFiles = new Map<number, { readonly pfn: number; readonly nrPages: number }>();
  readonly tlbs: CpuTlbs | null;
  /** The view of a PTE table the arch's PTE-aware hooks get (rebound per call). */
  readonly pteView: PteTableAccess;
  /** The RCU page-table freeing waits on (lockless walks are its readers). */
  readonly rcu: TableFreeRcu;
  /** A KVM guest backed by one of the mms (kvm.ts), or null. */
  kvm: KvmMmu | null = null;
  readonly checker: Checker | null;
  readonly mms: Mm[] = [];
  /**
   * `address_space->i_mmap` of every file and shmem mapping: the VMAs that map it, by mapping id
   * (vma_interval_tree_insert at mmap, __split_vma and fork; unlink_file_vma in free_pgtables). A VMA
   * munmap has detached from its mm stays here until its page tables go, so rmap walks (folio_mkclean)
   * still find it while it is being zapped.
   */
  readonly iMmap = new Map<number, IMmapEntry[]>();
  /**
   * `i_mmap_rwsem` held for read, by mapping id (number of readers; absent: free). A driver's
   * unmap_mapping_range holds it across its whole walk; free_pgtables' unlink_file_vma (write side)
   * waits for it.
   */
  readonly iMmapReaders = new Map<number, number>();
  /**
   * Folios and pages returned to the allocator since creation (PhysMem's lifetime totals, which
   * `mem.resetCounters()` leaves alone).
   */
  get freed(): { readonly folios: number; readonly pages: number } {
    const s = folioState(this.mem);
    return { folios: s.freedFoliosTotal, pages: s.freedPagesTotal };
  }
  private eventSink: TrailEventSink | null = null;
  /**
   * The user's event sink (`ScenarioSpec.events`), or null. Read once per operation / gather when the
   * sinks below are built, so a null sink costs nothing on the per-page paths; setting it installs
   * PhysMem's per-folio free observer only while the checker or a sink needs it.
   */
  get events(): TrailEventSink | null {
    return this.eventSink;
  }
  set events(sink: TrailEventSink | null) {
    this.eventSink = sink;
    this.mem.setFreeObserver(this.checker !== null || sink !== null ? this.freeObserver : null);
  }
  private readonly freeObserver: (head: number, order: number) => void;
  /**
   * pfn of the shared zero page (ZERO_PAGE(0), `my_zero_pfn`): -1 until a read fault first maps it
   * (`myZeroPfn()`). It is never freed, never on an rmap, and its refcount stays the allocation's.
   */
  zeroPfn = -1;
  /** Head pfn of the huge zero folio (PMD order), -1 until the first `getHugeZeroFolio()`. */
  hugeZeroFolio = -1;
  /**
   * huge_zero_refcount: one per mm that took the huge zero folio (MMF_HUGE_ZERO_FOLIO) plus the
   * shrinker's own once it exists (get_huge_zero_folio sets it to 2). The folio's page refcount is not it.
   */
  hugeZeroRefcount = 0;
  nextVmaId = 1;
  nextAnonVma = 1;
  private nextMmId = 1;
  /** What the machine was created with (`clone` creates its copy from it). */
  private readonly config: MachineConfig;

  constructor(config: MachineConfig) {
    this.config = config;
    const arch = config.arch ?? genericArch;
    if (typeof arch !== "object" || arch === null || typeof arch.tlbFlush !== "function") {
      throw new TeardownError(
        "BAD_ARCH",
        "machine",
        "createMachine",
        "arch must be an ArchTlb built with defineArch",
      );
    }
    const geometry = arch.geometry;
    if (geometry.ptrsPerPte < MIN_PTRS_PER_PTE) {
      throw new TeardownError(
        "BAD_ARCH",
        "machine",
        "createMachine",
        `arch ${arch.name}: ptrsPerPte must be at least ${MIN_PTRS_PER_PTE}, got ${geometry.ptrsPerPte}`,
      );
    }
    const pageSize = 2 ** geometry.pageShift;
    const pages = config.memoryBytes / pageSize;
    if (!Number.isInteger(pages) || pages <= 0 || pages > PTE_MAX_PFN) {
      throw new TeardownError(
        "EINVAL",
        "machine",
        "createMachine",
        `memoryBytes must be a positive multiple of ${pageSize} below ${PTE_MAX_PFN * pageSize}, got ${config.memoryBytes}`,
      );
    }
    const devicePages = (config.deviceBytes ?? 0) / pageSize;
    if (!Number.isInteger(devicePages) || devicePages < 0 || pages + devicePages > PTE_MAX_PFN) {
      throw new TeardownError(
        "EINVAL",
        "machine",
        "createMachine",
        `deviceBytes must be a multiple of ${pageSize} with memory and device memory below ${PTE_MAX_PFN * pageSize}, got ${config.deviceBytes}`,
      );
    }
    this.nrDevicePages = devicePages;
    this.nextDevicePfn = pages;
    const physPfns = pages + devicePages;
    this.arch = arch;
    this.geometry = geometry;
    this.pageShift = geometry.pageShift;
    this.pageSize = pageSize;
    this.nrPages = pages;
    this.mem = createPhysMem({
      nrPages: pages,
      pmdOrder: geometry.pmdOrder,
      pageShift: geometry.pageShift,
      pcpPolicy: config.pcpPolicy,
      pcpFreeHighBatch: config.pcpFreeHighBatch,
      rmapPolicy: config.rmapPolicy,
    });
    this.pteView = new PteTableAccess(this, folioState(this.mem));
    const swapSlots = Math.floor((config.swapBytes ?? 0) / pageSize);
    this.swap = swapSlots > 0 ? createSwapSpace(this.mem, { devices: [{ nrSlots: swapSlots + 1 }] }) : null;
    const cpus = config.cpus ?? 0;
    if (!Number.isInteger(cpus) || cpus < 0 || cpus > 256) {
      throw new TeardownError(
        "BAD_CPU",
        "machine",
        "createMachine",
        `cpus must be an integer in [0, 256], got ${cpus}`,
      );
    }
    this.tlbs =
      cpus > 0
        ? new CpuTlbs(
            {
              nrCpus: cpus,
              pageShift: geometry.pageShift,
              tlbEntries: config.tlbEntries,
              walkEntries: config.walkEntries,
            },
            physPfns,
          )
        : null;
    const devices = config.devices ?? 0;
    if (!Number.isInteger(devices) || devices < 0 || devices > 64) {
      throw new TeardownError(
        "BAD_DEVICE",
        "machine",
        "createMachine",
        `devices must be an integer in [0, 64], got ${devices}`,
      );
    }
    if (devices > 0) {
      if (this.tlbs === null)
        throw new TeardownError(
          "BAD_DEVICE",
          "machine",
          "createMachine",
          "devices need the CPU model (cpus >= 1): their TLBs are checked with the CPUs'",
        );
      if (!arch.invalidatesSecondaryTlbs)
        throw new TeardownError(
          "BAD_ARCH",
          "machine",
          "createMachine",
          `arch "${arch.name}" never invalidates secondary TLBs (no shared-virtual-addressing IOMMU): no device can share its page tables`,
        );
      this.tlbs.secondary = new SecondaryTlbs(
        { nrDevices: devices, pageShift: geometry.pageShift },
        physPfns,
      );
    }
    if (this.tlbs !== null) this.tlbs.flushIpi = arch.tlbFlushIpi;
    this.rcu = new TableFreeRcu(this.tlbs);
    const wantChecker = config.checker ?? cpus > 0;
    this.checker = wantChecker ? new Checker(this.mem, this.tlbs, physPfns, config.trailLength ?? 32) : null;
    const checker = this.checker;
    this.freeObserver = (head: number, order: number) => {
      const nr = 1 << order;
      if (checker !== null) checker.onFree(head, nr);
      const ev = this.eventSink;
      if (ev !== null) ev({ type: "pageFreed", pfn: head, nr });
    };
    this.events = null;
    if (checker !== null) this.mem.setDeferredSplitObserver((head) => checker.onDeferredSplitQueued(head));
    if (this.tlbs !== null) {
      this.tlbs.onWalkDone = (cpu, by) => {
        const ev = this.events;
        if (checker === null && ev === null) return;
        const e: TrailEvent = { type: "locklessWalkDone", cpu, by };
        if (checker !== null) checker.record(e);
        if (ev !== null) ev(e);
      };
      this.tlbs.onInvalidate = (mmId, kind, start, end) => {
        const ev = this.events;
        if (checker === null && ev === null) return;
        const e: TrailEvent = { type: "tlbInvalidated", mmId, kind, start, end };
        if (checker !== null) checker.record(e);
        if (ev !== null) ev(e);
      };
    }
  }

  /**
   * Sink for the teardown layer's own events (PTL, ops, huge PMDs, forced flushes): the checker's
   * trail and the user's sink; null when neither is on. Built once per operation.
   */
  traceSink(): TrailEventSink | null {
    const checker = this.checker;
    const ev = this.events;
    if (checker === null) return ev;
    if (ev === null) return (e) => checker.record(e);
    return (e) => {
      checker.record(e);
      ev(e);
    };
  }

  /** Sink for a gather's events: the checker (trail + rmap checks) and the user's sink; null when off. */
  gatherSink(): GatherEventSink | null {
    const checker = this.checker;
    const ev = this.events;
    if (checker === null) return ev;
    if (ev === null) return (e) => checker.onGatherEvent(e);
    return (e) => {
      checker.onGatherEvent(e);
      ev(e);
    };
  }

  /** vma_interval_tree_insert: `vma` of `mm` now maps its file (no-op for anon VMAs). */
  iMmapInsert(mm: Mm, vma: Vma): void {
    if (vma.mapping < 0) return;
    let list = this.iMmap.get(vma.mapping);
    if (list === undefined) {
      list = [];
      this.iMmap.set(vma.mapping, list);
    }
    list.push({ mm, vma });
  }

  /** unlink_file_vma: `vma` leaves its file's i_mmap (no-op for anon VMAs). */
  iMmapRemove(vma: Vma): void {
    if (vma.mapping < 0) return;
    const list = this.iMmap.get(vma.mapping);
    if (list === undefined) return;
    const i = list.findIndex((e) => e.vma === vma);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.iMmap.delete(vma.mapping);
  }

  /**
   * A driver's device file backed by `nrPages` pages of device memory (the next unclaimed range):
   * returns its mapping id. Throws ENOMEM when the machine's device memory is exhausted.
   */
  createDeviceFile(nrPages: number): number {
    if (this.nextDevicePfn + nrPages > this.nrPages + this.nrDevicePages) {
      throw new TeardownError(
        "ENOMEM",
        "machine",
        "createDeviceFile",
        `device memory exhausted: ${nrPages} pages asked for, ${this.nrPages + this.nrDevicePages - this.nextDevicePfn} left of ${this.nrDevicePages} (MachineConfig.deviceBytes)`,
      );
    }
    const mapping = this.mem.createAddressSpace({ swapBacked: false });
    this.deviceFiles.set(mapping, { pfn: this.nextDevicePfn, nrPages });
    this.nextDevicePfn += nrPages;
    return mapping;
  }

  /** `my_zero_pfn`: the shared zero page, allocated (order 0) the first time it is needed. */
  myZeroPfn(): number {
    if (this.zeroPfn < 0) this.zeroPfn = this.allocZero(0);
    return this.zeroPfn;
  }

  /**
   * get_huge_zero_folio: one more reference on huge_zero_refcount; the first call allocates the PMD-order
   * folio and sets the count to 2 (the caller's and the shrinker's). Also makes sure the small zero page
   * exists, which a later split of a huge zero PMD fills its PTE table with.
   */
  getHugeZeroFolio(): number {
    if (this.hugeZeroFolio < 0) {
      this.myZeroPfn();
      this.hugeZeroFolio = this.allocZero(this.geometry.pmdOrder);
      this.hugeZeroRefcount = 2;
      return this.hugeZeroFolio;
    }
    this.hugeZeroRefcount++;
    return this.hugeZeroFolio;
  }

  /** put_huge_zero_folio: drops a reference; only the shrinker may drop the last one (BUG_ON). */
  putHugeZeroFolio(): void {
    if (this.hugeZeroRefcount <= 1) {
      throw new TeardownError(
        "INVARIANT",
        "machine",
        "putHugeZeroFolio",
        `huge_zero_refcount would drop to ${this.hugeZeroRefcount - 1}: only the shrinker puts the last reference`,
      );
    }
    this.hugeZeroRefcount--;
  }

  private allocZero(order: number): number {
    try {
      return this.mem.allocFolio(order);
    } catch (e) {
      throw new TeardownError(
        "ENOMEM",
        "machine",
        order === 0 ? "myZeroPfn" : "getHugeZeroFolio",
        `out of memory allocating the ${order === 0 ? "zero page" : "huge zero folio"}`,
        { cause: e },
      );
    }
  }

  /**
   * A new machine with this one's configuration (and `arch`, by default this one's: another must have
   * the same geometry) in an exact copy of this one's state — see `copyFrom`. Returns it with the map
   * from each of this machine's VMAs to its copy. A model facility, nothing the kernel does.
   */
  clone(arch: ArchTlb = this.arch): { machine: Machine; vmas: Map<Vma, Vma> } {
    const machine = new Machine({ ...this.config, arch });
    return { machine, vmas: machine.copyFrom(this) };
  }

  /**
   * Makes this machine an exact copy of `src`'s state, between operations (a model facility, nothing
   * the kernel does): physical memory, swap, the CPUs' and devices' TLBs and walk caches, the checker,
   * RCU, every mm (exited ones too: same ids, page tables, rss, deposits, locks) with copies of their
   * VMAs, each file's i_mmap, device files, the zero pages and every id counter. Typed arrays are copied
   * into this machine's own where sizes match (no per-page object), so one machine can take copy after
   * copy; its event sink, free observer, hooks and arch stay its own. `src` must have the same memory,
   * swap, CPUs, devices, checker and page-table geometry (EINVAL otherwise), and this machine either no
   * mm yet or the same mms as `src` (a copy of it). Returns the map from each of `src`'s VMAs to its copy.
   */
  copyFrom(src: Machine): Map<Vma, Vma> {
    const bad = (why: string): never => {
      throw new TeardownError("EINVAL", "machine", "copyFrom", why);
    };
    if (src === this) bad("a machine cannot copy itself");
    if (!sameGeometry(src.geometry, this.geometry)) bad("the two machines' page-table geometries differ");
    if (src.nrPages !== this.nrPages || src.nrDevicePages !== this.nrDevicePages)
      bad("the two machines differ in memory or device memory");
    if ((src.swap === null) !== (this.swap === null)) bad("one machine has swap, the other none");
    if ((src.tlbs === null) !== (this.tlbs === null)) bad("one machine models CPUs, the other none");
    if ((src.checker === null) !== (this.checker === null))
      bad("one machine runs the checker, the other not");
    if (src.rcu.waiting !== 0) bad("src is inside an operation (RCU callbacks are waiting)");
    const fresh = this.mms.length === 0;
    if (!fresh && (this.mms.length !== src.mms.length || this.mms.some((m, i) => m.id !== src.mms[i].id)))
      bad("this machine's mms are not src's");
    // Mms first: a new one allocates its PGD from this machine's memory, which the copy below overwrites.
    if (fresh) for (const m of src.mms) this.mms.push(new Mm(m.id, this, createTlbMm(m.id)));
    const vmas = new Map<Vma, Vma>();
    const vmaOf = (v: Vma): Vma => {
      let c = vmas.get(v);
      if (c === undefined) {
        c = { ...v };
        vmas.set(v, c);
      }
      return c;
    };
    for (const m of src.mms) for (const v of m.vmas) vmaOf(v);
    this.iMmap.clear();
    for (const [mapping, list] of src.iMmap)
      this.iMmap.set(
        mapping,
        list.map((e) => ({ mm: this.mms[src.mms.indexOf(e.mm)], vma: vmaOf(e.vma) })),
      );
    for (let i = 0; i < src.mms.length; i++) this.mms[i].copyFrom(src.mms[i], vmas);
    this.mem.copyFrom(src.mem);
    this.swap?.copyFrom(src.swap!);
    this.tlbs?.copyFrom(src.tlbs!);
    this.checker?.copyFrom(src.checker!);
    this.rcu.copyFrom(src.rcu);
    this.pteView.copyFrom(src.pteView);
    // A KVM guest: its own copy, reused when this machine already has one for the same mm.
    if (src.kvm === null) this.kvm = null;
    else {
      if (this.kvm === null || this.kvm.mmId !== src.kvm.mmId)
        this.kvm = new KvmMmu(src.kvm.mmId, this.nrPages);
      this.kvm.copyFrom(src.kvm);
    }
    if (this.checker !== null) this.checker.kvm = this.kvm;
    this.iMmapReaders.clear();
    for (const [k, v] of src.iMmapReaders) this.iMmapReaders.set(k, v);
    this.deviceFiles.clear();
    for (const [k, v] of src.deviceFiles) this.deviceFiles.set(k, v);
    this.nextDevicePfn = src.nextDevicePfn;
    this.zeroPfn = src.zeroPfn;
    this.hugeZeroFolio = src.hugeZeroFolio;
    this.hugeZeroRefcount = src.hugeZeroRefcount;
    this.nextVmaId = src.nextVmaId;
    this.nextAnonVma = src.nextAnonVma;
    this.nextMmId = src.nextMmId;
    return vmas;
  }

  /** A new empty mm on this machine. */
  createMm(): Mm {
    const mm = new Mm(this.nextMmId, this, createTlbMm(this.nextMmId));
    this.nextMmId++;
    this.mms.push(mm);
    return mm;
  }

  /** Model bytes of everything on this machine. */
  stateBytes(): number {
    let b = this.mem.stateBytes() + (this.swap?.stateBytes() ?? 0) + (this.tlbs?.stateBytes() ?? 0);
    if (this.checker !== null) b += this.checker.dirtyFile.byteLength;
    for (const mm of this.mms) b += mm.stateBytes();
    if (this.kvm !== null) b += this.kvm.stateBytes();
    return b;
  }
}

/** Creates a machine (physical memory, optional swap, optional CPUs and checker). */
export function createMachine(config: MachineConfig): Machine {
  return new Machine(config);
}
