// Runs a package README's example the way a user meets it, in a folder where the packages were installed
// from a registry:
//
//   node scripts/release/run-example.mjs <README.md> <folder> <label>
//   node scripts/release/run-example.mjs --file <file.mts|.mjs> <folder> <label>   same for a test program
//   node scripts/release/run-example.mjs --install-line <README.md>   prints the packages of the `pnpm add` line
//
// The example is the first ```ts / ```js block of the README, taken verbatim. It is type-checked against
// the installed packages' own declarations (skipLibCheck off, checkJs for JS), transpiled when it is
// TypeScript, and run with node. Every `console.log(...)` line may end with `// <expected output>` (text
// after a `:` in that comment is explanation): the printed lines must match those, in order.

import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(join(root, "package.json"));
const ts = require("typescript");

/** The first fenced block whose language is one of `langs`, and its language. */
export function firstBlock(markdown, langs) {
  const re = /^```([a-z]*)[^\n]*\n([\s\S]*?)^```\s*$/gm;
  for (let m = re.exec(markdown); m !== null; m = re.exec(markdown))
    if (langs.includes(m[1])) return { lang: m[1], code: m[2] };
  return null;
}

/** Packages named by the README's `pnpm add` line (the install line users copy). */
export function installLine(markdown) {
  const block = firstBlock(markdown, ["sh", "bash", "shell"]);
  const line = block?.code.split("\n").find((l) => /^\s*pnpm add /.test(l));
  if (!line) throw new Error("README has no `pnpm add` line in a sh block");
  return line
    .trim()
    .split(/\s+/)
    .slice(2)
    .filter((a) => !a.startsWith("-"));
}

/** Expected output lines: one per console.log call, `undefined` where the line carries no expectation. */
export function expectations(code) {
  const out = [];
  for (const line of code.split("\n")) {
    const calls = line.match(/console\.log\(/g)?.length ?? 0;
    if (calls === 0) continue;
    if (calls > 1) throw new Error(`one console.log per line, please: ${line}`);
    const m = /\/\/\s*(.*)$/.exec(line.slice(line.indexOf("console.log(")));
    out.push(m ? m[1].replace(/:\s.*$/, "").trim() : undefined);
  }
  return out;
}

function typecheck(folder, file, lang) {
  const tsconfig = join(folder, `tsconfig.${file}.json`);
  writeFileSync(
    tsconfig,
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        lib: ["ES2023"],
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        allowJs: lang === "js",
        checkJs: lang === "js",
        types: ["node"],
        typeRoots: [join(root, "node_modules", "@types")],
      },
      files: [file],
    }),
  );
  const r = spawnSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", tsconfig], {
    cwd: folder,
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`type errors in ${file}:\n${r.stdout}${r.stderr}`);
}

export function runExample(readmePath, folder, label) {
  const block = firstBlock(readFileSync(readmePath, "utf8"), ["ts", "typescript", "js", "javascript"]);
  if (!block) throw new Error(`${readmePath} has no ts/js example`);
  const lang = block.lang.startsWith("t") ? "ts" : "js";
  runSource(block.code, lang, folder, label, `${readmePath.split("/").slice(-2).join("/")} example`);
}

/** Type-checks, (transpiles) and runs `code` in `folder`, comparing its output with its console.log comments. */
export function runSource(code, lang, folder, label, what) {
  const source = `${label}.${lang === "ts" ? "mts" : "mjs"}`;
  writeFileSync(join(folder, source), code);
  typecheck(folder, source, lang);
  let runFile = source;
  if (lang === "ts") {
    runFile = `${label}.mjs`;
    const js = ts.transpileModule(code, {
      compilerOptions: {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
        verbatimModuleSyntax: true,
      },
      fileName: source,
    }).outputText;
    writeFileSync(join(folder, runFile), js);
  }
  const stdout = execFileSync(process.execPath, [runFile], { cwd: folder, encoding: "utf8" });
  const printed = stdout.split("\n").filter((l, i, a) => !(l === "" && i === a.length - 1));
  const expected = expectations(code);
  if (printed.length !== expected.length)
    throw new Error(
      `${label}: ${expected.length} console.log lines but ${printed.length} printed:\n${stdout}`,
    );
  expected.forEach((want, i) => {
    if (want !== undefined && printed[i] !== want)
      throw new Error(`${label}: line ${i + 1} printed "${printed[i]}", the source says "${want}"`);
  });
  const checked = expected.filter((e) => e !== undefined).length;
  console.log(
    `  ✓ ${label}: ${what} type-checks and runs (${checked}/${expected.length} printed lines as written)`,
  );
  for (const l of printed) console.log(`      > ${l}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  if (args[0] === "--install-line") console.log(installLine(readFileSync(args[1], "utf8")).join(" "));
  else if (args[0] === "--file") {
    const [, file, folder, label] = args;
    runSource(
      readFileSync(file, "utf8"),
      /\.m?ts$/.test(file) ? "ts" : "js",
      folder,
      label,
      file.split("/").pop(),
    );
  } else {
    const [readme, folder, label] = args;
    if (!label) throw new Error("usage: run-example.mjs <README.md> <folder> <label>");
    runExample(readme, folder, label);
  }
}
