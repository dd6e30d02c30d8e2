// Public API of @mmgather/teardown: process model, zap walks, operations, checker, reports.

export type {
  TeardownEvent,
  TrailEvent,
  TrailEventSink,
  Violation,
  ViolationKind,
  WalkForcedFlushReason,
} from "./checker.js";
export { Checker, FREES_WITHOUT_RESCHED_BOUND } from "./checker.js";
export { cloneBuilt, sharesBuild } from "./clone.js";
export type { CostEstimate, CostPhase, CostTerm } from "./cost.js";
export { COST_TERMS, estimateCost, termCount } from "./cost.js";
export type { CpuTlbConfig, FlushShare } from "./cpu-tlb.js";
export { CpuTlbs, type LocklessWalkEnd } from "./cpu-tlb.js";
export type {
  CaseFeatures,
  CaseKnob,
  ConcurrentActor,
  DesignOutcome,
  DifferentialDesign,
  DifferentialOptions,
  DifferentialResult,
  RandomScenarioOptions,
} from "./differential.js";
export {
  CASE_KNOBS,
  CONCURRENT_ACTORS,
  caseFeatures,
  DIFFERENTIAL_DESIGNS,
  DIGEST_IGNORED_FLAGS,
  randomScenario,
  runDifferential,
} from "./differential.js";
export type { TeardownErrorCode } from "./errors.js";
export { isTeardownError, TeardownError } from "./errors.js";
export type {
  ExploreFailure,
  ExploreOptions,
  ExploreResult,
  ScheduleRun,
  ScheduleStep,
} from "./explore.js";
export { explore, runSchedule } from "./explore.js";
export type { Collapse, CollapseContext, CollapseCounters, CollapseSteps } from "./khugepaged.js";
export { collapse, createCollapseCounters, defineCollapse } from "./khugepaged.js";
export type { KvmCounters, KvmFault, KvmFaultContext, KvmFaultSteps } from "./kvm.js";
export { defineKvmFault, KvmMmu, kvmFault } from "./kvm.js";
export type { MachineConfig } from "./machine.js";
export { createMachine, Machine } from "./machine.js";
export type { MigrateCounters, Migration, MigrationContext, MigrationSteps } from "./migrate.js";
export { defineMigration, migration } from "./migrate.js";
export { Mm } from "./mm.js";
export type { OpStep, OpSteps } from "./mmap-lock.js";
export type { NumaScan, NumaScanContext, NumaScanCounters, NumaScanSteps } from "./numa.js";
export { defineNumaScan, numaScan } from "./numa.js";
export type { OpResult, RevokeResult, TeardownOp, TeardownOptions, VariantSpec } from "./ops.js";
export {
  checkRevokeVma,
  createRevokeResult,
  exitMmap,
  madviseDontneed,
  munmap,
  resolveVariant,
  revokeSteps,
  startOp,
  walkForVariant,
} from "./ops.js";
export { LEVEL_PGD, LEVEL_PMD, LEVEL_PTE, LEVEL_PUD, PageTables } from "./page-tables.js";
export {
  isMigrationPte,
  isWritableMigrationPte,
  migrationPtePfn,
  mkMigrationPte,
  mkPte,
  mkSwapPte,
  PFNMAP_PTE_BITS,
  PMD_HUGE,
  PTE_CONT,
  PTE_DIRTY,
  PTE_PRESENT,
  PTE_WRITE,
  PTE_YOUNG,
  ptePfn,
  pteSwapEntry,
  SWP_MIGRATION_READ,
  SWP_MIGRATION_WRITE,
  ZERO_PTE_BITS,
} from "./pte.js";
export { archSetPtes, DirectTlbOps, PteTableAccess } from "./pte-view.js";
export { TableFreeRcu } from "./rcu.js";
export type {
  ContPteReport,
  CpuCounters,
  FinalStateChecks,
  LayerSnapshot,
  TeardownReport,
} from "./report.js";
export { checkFinalState, flattenCounters, snapshotLayers } from "./report.js";
export type { Rng } from "./rng.js";
export { createRng } from "./rng.js";
export type {
  BuiltScenario,
  ConcurrentOpSpec,
  OpSpec,
  ScenarioProgress,
  ScenarioSpec,
  VmaSpec,
} from "./scenario.js";
export { buildScenario, interleave, runBuilt, runScenario } from "./scenario.js";
export { SecondaryTlbs } from "./secondary-tlb.js";
export type { SwapoffCounters } from "./swapoff.js";
export type { TlbUnmapBatch } from "./tlb-batch.js";
export type { Vma, VmaKind } from "./vma.js";
export {
  isPfnmap,
  MM_ANONPAGES,
  MM_FILEPAGES,
  MM_SHMEMPAGES,
  MM_SWAPENTS,
  NR_MM_COUNTERS,
} from "./vma.js";
export type { FaultOptions, FolioPolicy } from "./workload.js";
export {
  bindDevice,
  faultIn,
  forEachPresent,
  forkMm,
  gupFastWalk,
  mlockVma,
  mmapVma,
  swapOut,
  touch,
  touchDevice,
} from "./workload.js";
export type { WritebackCounters } from "./writeback.js";
export type { WalkCounters } from "./zap/context.js";
export { ZapContext } from "./zap/context.js";
export type { ZapWalk, ZapWalkOverrides, ZapWalkSteps } from "./zap/steps.js";
export {
  defineZapWalk,
  endPteTableDefault,
  folioBatchWalk,
  freeTableDefault,
  perPteWalk,
  zapHugePmdDefault,
  zapPtesFolioBatch,
  zapPtesPerPte,
  zapSpecialPtes,
} from "./zap/steps.js";
