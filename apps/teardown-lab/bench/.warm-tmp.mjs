const T = await import("@mmgather/teardown");
const S = await import("../dist/spec.js");
const P = await import("../dist/presets.js");
const V = await import("../dist/scenario.js");
const warmSize = process.argv[2];
const t0 = performance.now();
if (warmSize !== "0") {
  const w = V.validateScenario(P.PRESETS["munmap-1g"].build({ size: warmSize }), "w");
  for (const v of S.VARIANTS) {
    const sp = S.toScenarioSpec(w, v, "generic");
    T.runScenario(sp);
  }
}
const t1 = performance.now();
const s = V.validateScenario(P.PRESETS["munmap-1g"].build({}), "x");
const specs = S.VARIANTS.map((v) => S.toScenarioSpec(s, v, "generic"));
const b = T.buildScenario(specs[0]);
const t2 = performance.now();
const sims = [];
for (let i = 0; i < 3; i++) {
  const c = i < 2 ? T.cloneBuilt(b, specs[i]) : b;
  sims.push((T.runBuilt(c, specs[i]).simWallNs / 1e6).toFixed(0));
}
const t3 = performance.now();
console.log(
  `warm ${warmSize.padEnd(5)} warmup ${(t1 - t0).toFixed(0)} build ${(t2 - t1).toFixed(0)} runs ${(t3 - t2).toFixed(0)} sims ${sims.join(" ")} total-since-start ${t3.toFixed(0)}`,
);
