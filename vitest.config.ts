import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // test/chaos/ (a bounded fault run on real processes) registers itself only as root with
    // the tools `.ci/run` installs; `npm run test:chaos` runs it alone.
    exclude: ["node_modules", "dist", "test/fixtures/**"],
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
