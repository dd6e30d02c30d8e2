import { defineConfig } from "vite";

// The visualizer: web/ → dist/web. The model runs in a Web Worker (web/worker.ts).
export default defineConfig({
  root: "web",
  base: "./",
  build: { outDir: "../dist/web", emptyOutDir: true, chunkSizeWarningLimit: 2000 },
  worker: { format: "es" },
  server: { host: "127.0.0.1" },
  preview: { host: "127.0.0.1" },
});
