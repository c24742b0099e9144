import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // The bounded fault run on real processes (network namespaces, root) is `npm run test:chaos`:
    // its histories are still often too ambiguous for the checker's budget ("inconclusive").
    exclude: ["node_modules", "dist", "test/fixtures/**", "test/chaos/**"],
    // Property and simulation tests are CPU-bound; the CI machine has 2 cores.
    testTimeout: 60_000,
    // Setup hooks build the CLI or start clusters; on a loaded 2-core machine that takes longer
    // than vitest's default of 10 s.
    hookTimeout: 180_000,
    pool: "forks",
    // Vitest defaults to cores - 1 workers, one on the 2-core CI machine; the simulator and
    // property files are CPU-bound and independent, so use both cores.
    maxWorkers: 2,
  },
});
