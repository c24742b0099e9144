/**
 * How soon a `blixard node start` process serves after it is spawned: a single-member cluster
 * started N times on an empty data directory (a first start) and N times on the same existing
 * one (a restart), with the compiled CLI (bin/blixard.js over dist/; run `npm run build` after
 * a change). Reports p50 and max of the time from spawn to the first 200 of `/healthz` and of
 * `/readyz` (a leader is known), and the node's CPU seconds until each, beside a bare
 * `node -e 0`. Prints numbers; asserts nothing (kept out of `npm test`).
 *
 *   npm run bench:startup [-- --runs 10 --cpu-prof-dir DIR --bin PATH]
 *
 * `--bin` runs another build's CLI (e.g. another worktree's bin/blixard.js) to compare the two
 * on the same machine, one right after the other.
 *
 * With `--cpu-prof-dir` every node runs under `node --cpu-prof` writing its profile there, and
 * the bench prints where the start-up's CPU went (self time by origin and by function). Open a
 * profile in Chrome's DevTools (Performance) for the call tree.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { cleanupSync, tempDir } from "./cluster/procs.js";
import { summarizeProfiles, topLines } from "./startup/profile.js";
import {
  BLIXARD_BIN,
  bareNodeMs,
  measureStart,
  nodePorts,
  type StartTiming,
} from "./startup/measure.js";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "10" },
    "cpu-prof-dir": { type: "string" },
    bin: { type: "string", default: BLIXARD_BIN },
  },
});
const runs = Number(values.runs);
if (!Number.isSafeInteger(runs) || runs <= 0) throw new Error("--runs must be a positive integer");
const bin = resolve(values.bin);
const profileDir =
  values["cpu-prof-dir"] === undefined ? undefined : resolve(values["cpu-prof-dir"]);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    cleanupSync();
    process.exit(130);
  });
}

try {
  const root = tempDir("blixard-startup-");
  const logPath = join(root, "node.log");
  const bare: number[] = [];
  for (let i = 0; i < runs; i++) bare.push(await bareNodeMs(logPath));
  console.log(bin);
  console.log(`node -e 0: p50 ${ms(percentile(bare, 50))}  max ${ms(Math.max(...bare))}`);

  const flagsFor = (kind: string): string[] => {
    if (profileDir === undefined) return [];
    const dir = join(profileDir, kind);
    mkdirSync(dir, { recursive: true });
    return ["--cpu-prof", "--cpu-prof-dir", dir];
  };

  const fresh: StartTiming[] = [];
  for (let i = 0; i < runs; i++) {
    const dataDir = join(root, `fresh-${i}`);
    const ports = await nodePorts();
    fresh.push(await measureStart({ bin, dataDir, logPath, ports, nodeFlags: flagsFor("fresh") }));
  }
  report("first start", fresh);

  // One unmeasured start writes the data directory the restarts open.
  const restartDir = join(root, "restart");
  const ports = await nodePorts();
  await measureStart({ bin, dataDir: restartDir, logPath, ports });
  const restarts: StartTiming[] = [];
  for (let i = 0; i < runs; i++) {
    restarts.push(
      await measureStart({
        bin,
        dataDir: restartDir,
        logPath,
        ports,
        nodeFlags: flagsFor("restart"),
      }),
    );
  }
  report("restart", restarts);

  if (profileDir !== undefined) {
    for (const [kind, timings] of [
      ["fresh", fresh],
      ["restart", restarts],
    ] as const) {
      // The profile's clock starts a little after spawn: the window ends a little after the leader.
      const windowMs = percentile(
        timings.map((t) => t.leaderMs),
        50,
      );
      const summary = summarizeProfiles(join(profileDir, kind), windowMs);
      console.log(
        `\n${kind}: self time per start in the first ${ms(windowMs)} of ${summary.profiles} profiles (${join(profileDir, kind)})`,
      );
      console.log("  by origin:");
      for (const line of topLines(summary.byOrigin, summary.profiles)) console.log(`  ${line}`);
      console.log("  by function:");
      for (const line of topLines(summary.byFunction, summary.profiles, 25)) {
        console.log(`  ${line}`);
      }
    }
  }
} finally {
  cleanupSync();
}

function report(what: string, timings: readonly StartTiming[]): void {
  const line = (label: string, pick: (t: StartTiming) => number, format: (v: number) => string) => {
    const values = timings.map(pick);
    return `${label} p50 ${format(percentile(values, 50))} max ${format(Math.max(...values))}`;
  };
  console.log(
    `${what} (${timings.length} runs): ` +
      [
        line("spawn→healthz", (t) => t.healthzMs, ms),
        line("spawn→leader", (t) => t.leaderMs, ms),
        line("CPU→healthz", (t) => t.healthzCpuS, cpu),
        line("CPU→leader", (t) => t.leaderCpuS, cpu),
      ].join(" | "),
  );
}

/** The nearest-rank percentile. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function ms(value: number): string {
  return `${Math.round(value)} ms`;
}

function cpu(value: number): string {
  return `${value.toFixed(2)} s`;
}
