import { defineConfig } from "vite";

// The CLI as one file, dist/teardown-lab.js (the package's bin): the ESM loader of Node 20 pays per
// module it resolves, reads and compiles, and `run` would otherwise load about 200 of them (zod, the
// model packages, commander) before doing anything. Beside the tsc output in dist/, so the paths the
// code builds from import.meta.url (../calibration, ../package.json, ./sweep-worker.js) stay the same.
// Left out and loaded as they are: @mmgather/host (its child process is a file next to its own dist),
// and what only the queue loads (bullmq, ioredis, tinypool, koffi).
export default defineConfig({
  publicDir: false,
  logLevel: "warn",
  build: {
    ssr: "src/cli.ts",
    outDir: "dist",
    emptyOutDir: false,
    target: "node20",
    sourcemap: true,
    minify: false,
    rolldownOptions: {
      output: { entryFileNames: "teardown-lab.js", chunkFileNames: "teardown-lab-[name]-[hash].js" },
    },
  },
  ssr: {
    noExternal: true,
    external: ["@mmgather/host", "bullmq", "ioredis", "tinypool", "koffi"],
  },
});
