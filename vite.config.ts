// Vite builds the web UI in ui/ into ui/dist, which Tauri ships (frontendDist "../ui/dist"). TSX is compiled by
// Vite's own transformer (Oxc in Vite 8; the `esbuild` option is its deprecated predecessor) with Preact's
// automatic JSX runtime, so no Babel plugin is needed.
import { defineConfig } from "vite";

export default defineConfig({
  root: "ui",
  clearScreen: false,
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  server: {
    port: 1420,
    strictPort: true,
    host: process.env.TAURI_DEV_HOST || false,
    watch: { ignored: ["**/src-tauri/**", "**/target/**"] },
  },
  envPrefix: ["VITE_", "TAURI_ENV_"],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Tauri's webviews: WebView2 (Chromium) on Windows, WebKit on macOS/Linux, Android System WebView.
    target: process.env.TAURI_ENV_PLATFORM === "windows" ? "chrome105" : "safari15",
    sourcemap: !!process.env.TAURI_ENV_DEBUG,
    minify: !process.env.TAURI_ENV_DEBUG,
  },
});
