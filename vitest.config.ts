import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    exclude: ["node_modules", "dist", "test/fixtures/**"],
    // Property and simulation tests are CPU-bound; the CI machine has 2 cores.
    testTimeout: 60_000,
    pool: "forks",
  },
});
