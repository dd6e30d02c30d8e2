// What a published @mmgather tarball may and must contain. Used by `pnpm check:pack` (local packs) and by
// the release test (the tarballs as the local registry serves them).
//
//   node scripts/release/tarball.mjs <file.tgz>... [--version X.Y.Z] [--changelog]

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** Paths no user needs; each is a bug in `files` or in the build. */
const FORBIDDEN = [
  [/(^|\/)__tests__(\/|$)/, "test folder"],
  [/\.test(-d)?\.(ts|js|mjs|d\.ts)(\.map)?$/, "test file"],
  [/\.tsbuildinfo$/, "TypeScript build info"],
  [/(^|\/)bench(\/|$)|\.bench\.(ts|js|mjs)$/, "benchmark"],
  [/(^|\/)node_modules(\/|$)/, "node_modules"],
  [/(^|\/)(vitest\.config|tsconfig)[^/]*$/, "dev config"],
  [/(^|\/)\.turbo(\/|$)|\.tgz$/, "build leftovers"],
];

const INTERNAL_DEP_FIELDS = ["dependencies", "peerDependencies", "optionalDependencies"];

/**
 * Checks one tarball; returns `{ name, version, files, problems }` (problems empty = good).
 * `version`: every internal dependency and peer must be pinned to exactly this version.
 * `changelog`: CHANGELOG.md must be packed and name the package's version.
 */
export function checkTarball(tgz, { version, changelog = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "mmgather-tgz-"));
  try {
    execFileSync("tar", ["-xzf", tgz, "-C", dir]);
    const pkgRoot = join(dir, "package");
    const files = listFiles(pkgRoot).sort();
    const has = new Set(files);
    const problems = [];
    const pkg = JSON.parse(readFileSync(join(pkgRoot, "package.json"), "utf8"));

    for (const f of files)
      for (const [re, what] of FORBIDDEN)
        if (re.test(f)) problems.push(`${f}: ${what} must not be published`);
    for (const f of ["package.json", "README.md", "dist/index.js", "dist/index.d.ts"])
      if (!has.has(f)) problems.push(`${f} is missing`);

    // Every entry of the exports map points at a packed file.
    for (const target of exportTargets(pkg.exports)) {
      const f = posix.normalize(target);
      if (!has.has(f)) problems.push(`exports target ${target} is not in the tarball`);
    }

    // Source maps (.js.map and declaration maps) must resolve: the map next to each file that names it,
    // and every source the map lists (we ship src/ so "go to definition" lands on the TypeScript).
    for (const f of files) {
      if (/\.(js|d\.ts)$/.test(f)) {
        const m = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(pkgRoot, f), "utf8"));
        if (m && !has.has(posix.join(posix.dirname(f), m[1])))
          problems.push(`${f}: sourceMappingURL ${m[1]} is not in the tarball`);
      }
      if (f.endsWith(".map")) {
        const map = JSON.parse(readFileSync(join(pkgRoot, f), "utf8"));
        for (const s of map.sources ?? []) {
          const src = posix.normalize(posix.join(posix.dirname(f), map.sourceRoot ?? "", s));
          if (!has.has(src))
            problems.push(`${f}: source ${s} is not in the tarball (stale dist? rm -rf dist)`);
        }
      }
    }

    for (const field of [...INTERNAL_DEP_FIELDS, "devDependencies"])
      for (const [dep, range] of Object.entries(pkg[field] ?? {}))
        if (String(range).startsWith("workspace:")) problems.push(`${field}.${dep} is still "${range}"`);
    if (pkg.publishConfig?.registry)
      problems.push(`publishConfig.registry is set (${pkg.publishConfig.registry})`);
    if (version !== undefined) {
      if (pkg.version !== version) problems.push(`version is ${pkg.version}, expected ${version}`);
      for (const field of INTERNAL_DEP_FIELDS)
        for (const [dep, range] of Object.entries(pkg[field] ?? {}))
          if (dep.startsWith("@mmgather/") && range !== version)
            problems.push(`${field}.${dep} is "${range}", expected exactly "${version}"`);
    }
    if (changelog) {
      if (!has.has("CHANGELOG.md")) problems.push("CHANGELOG.md is missing");
      else if (!readFileSync(join(pkgRoot, "CHANGELOG.md"), "utf8").includes(`## ${pkg.version}`))
        problems.push(`CHANGELOG.md has no "## ${pkg.version}" section`);
    }
    return { name: pkg.name, version: pkg.version, files, problems };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function listFiles(root, dir = root) {
  const out = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...listFiles(root, p));
    else out.push(relative(root, p).split("\\").join("/"));
  }
  return out;
}

function exportTargets(exp) {
  if (typeof exp === "string") return [exp];
  if (exp === null || typeof exp !== "object") return [];
  return Object.values(exp).flatMap(exportTargets);
}

/** One line per tarball: name, file count, and the top-level layout. */
export function summarize({ name, version, files }) {
  const groups = new Map();
  for (const f of files) {
    const top = f.includes("/") ? `${f.slice(0, f.indexOf("/"))}/` : f;
    groups.set(top, (groups.get(top) ?? 0) + 1);
  }
  const parts = [...groups].map(([k, n]) => (k.endsWith("/") ? `${k} (${n})` : k));
  return `${name}@${version}: ${files.length} files: ${parts.join(", ")}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const vi = args.indexOf("--version");
  const version = vi >= 0 ? args[vi + 1] : undefined;
  const changelog = args.includes("--changelog");
  const tgzs = args.filter((a, i) => a.endsWith(".tgz") && i !== vi + 1);
  if (tgzs.length === 0) throw new Error("usage: tarball.mjs <file.tgz>... [--version X.Y.Z] [--changelog]");
  let bad = 0;
  for (const tgz of tgzs) {
    if (!existsSync(tgz)) throw new Error(`${tgz} does not exist`);
    const r = checkTarball(tgz, { version, changelog });
    console.log(summarize(r));
    for (const p of r.problems) console.error(`  ✗ ${r.name}: ${p}`);
    bad += r.problems.length;
  }
  if (bad > 0) process.exit(1);
}
