// Browser tests: the built UI (ui/dist) in a real headless Chromium driven by playwright-core, with a fake backend
// behind @tauri-apps/api/mocks. The test process itself runs in node; files run one at a time (one browser, two
// cores shared with other work).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "node",
    include: ["tests/browser/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
