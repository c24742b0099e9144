import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

/**
 * `npm run test:chaos`: only the bounded fault run of `test/chaos/` (it is in `npm test` too).
 * Spread, not mergeConfig: mergeConfig concatenates `include`, which ran every test.
 */
export default defineConfig({
  test: {
    ...base.test,
    include: ["test/chaos/**/*.test.ts"],
    exclude: ["node_modules", "dist"],
    testTimeout: 300_000,
  },
});
