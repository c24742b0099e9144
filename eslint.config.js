// @ts-check
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

/**
 * Code that must be deterministic: the simulator replays it by seed, so it may not read the
 * clock, timers, randomness, the process or any Node API, nor reach the real platform.
 */
export const DETERMINISTIC_FILES = [
  "src/common/**/*.ts",
  "src/raft/**/*.ts",
  "src/statemachine/**/*.ts",
  "src/orchestrator/scheduler/**/*.ts",
  "src/orchestrator/scheduler.ts",
];

const forbiddenGlobals = [
  "Date",
  "setTimeout",
  "setInterval",
  "setImmediate",
  "clearTimeout",
  "clearInterval",
  "clearImmediate",
  "queueMicrotask",
  "process",
  "performance",
  "crypto",
  "fetch",
  "require",
  "Buffer",
  "global",
].map((name) => ({
  name,
  message: `${name} is not allowed in deterministic code (src/raft, src/statemachine, the scheduler): take time and randomness as inputs.`,
}));

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "coverage/**", "test/fixtures/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      "no-console": "off",
      eqeqeq: ["error", "always"],
    },
  },
  {
    files: DETERMINISTIC_FILES,
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-globals": ["error", ...forbiddenGlobals],
      "no-restricted-properties": [
        "error",
        {
          object: "Math",
          property: "random",
          message: "Math.random is not allowed in deterministic code: take a seeded Random.",
        },
        ...forbiddenGlobals.map(({ name, message }) => ({
          object: "globalThis",
          property: name,
          message,
        })),
      ],
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["node:*"], message: "Node APIs are not allowed in deterministic code." },
            {
              group: [
                "fs",
                "fs/*",
                "os",
                "path",
                "net",
                "http",
                "http2",
                "https",
                "crypto",
                "child_process",
                "worker_threads",
                "timers",
                "timers/*",
                "perf_hooks",
                "process",
                "dgram",
                "dns",
                "tls",
                "zlib",
              ],
              message: "Node APIs are not allowed in deterministic code.",
            },
            {
              group: ["**/platform", "**/platform/*", "**/platform/**"],
              message: "The real platform is wired in by composition roots only.",
            },
          ],
        },
      ],
    },
  },
);
