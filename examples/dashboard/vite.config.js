import { defineConfig } from "vite";

// Relative asset paths: dist/ works from any directory of any static server.
export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true },
  server: { port: 5173, strictPort: true },
  preview: { port: 4173, strictPort: true },
});
