// Component and unit tests: ui/src/**/*.test.ts(x) in happy-dom, with the IPC modules mocked per test file.
import { defineConfig } from "vitest/config";

export default defineConfig({
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  test: {
    environment: "happy-dom",
    include: ["ui/src/**/*.test.{ts,tsx}"],
    mockReset: true,
  },
});
