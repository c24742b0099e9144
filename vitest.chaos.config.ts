import { defineConfig, mergeConfig } from "vitest/config";
import base from "./vitest.config.js";

/** `npm run test:chaos`: only the bounded fault run of `test/chaos/`. */
export default mergeConfig(
  base,
  defineConfig({
    test: {
      include: ["test/chaos/**/*.test.ts"],
      exclude: ["node_modules", "dist"],
      testTimeout: 300_000,
    },
  }),
  false,
);
