/**
 * The simulator must catch bugs planted on purpose: each test runs seeds with the bug until one
 * reports a violation, asserts that happens within a bounded number of seeds, and prints the
 * seed (the closing numbers come from here). The four classic Raft bugs are the core's
 * switches (Figure 8, no up-to-date check, forgetting the vote) and the disk's early ack.
 */
import { describe, expect, it } from "vitest";
import { runSimulation, type SimulationOptions } from "../../src/sim/run.js";

interface Caught {
  readonly seed: number;
  readonly seedsRun: number;
  readonly properties: string[];
  readonly replay: string;
  readonly traceTail: readonly string[];
}

async function firstViolation(
  options: Omit<SimulationOptions, "seed">,
  seeds: readonly number[],
): Promise<Caught | undefined> {
  for (const [i, seed] of seeds.entries()) {
    const report = await runSimulation({ seed, ...options });
    if (report.violations.length > 0) {
      return {
        seed,
        seedsRun: i + 1,
        properties: report.violations.map((v) => v.property),
        replay: report.replayCommand,
        traceTail: report.traceTail,
      };
    }
  }
  return undefined;
}

/** At most this many seeds per bug. */
const MAX_SEEDS = 24;
const SEEDS = Array.from({ length: MAX_SEEDS }, (_, i) => 100 + i);
const SAFETY = [
  "election-safety",
  "leader-completeness",
  "log-matching",
  "leader-append-only",
  "state-machine-safety",
  "commit-monotonic",
  "linearizability",
  "fatal",
];

function report(name: string, found: Caught | undefined): void {
  console.log(
    found === undefined
      ? `planted bug ${name}: NOT caught in ${MAX_SEEDS} seeds`
      : `planted bug ${name}: caught at seed ${found.seed} (${found.seedsRun} seeds run) ` +
          `[${found.properties.join(", ")}]; replay: ${found.replay}`,
  );
}

/** Settings per bug (each still a pure function of the seed). */
const CORE_BUGS: readonly { name: string; options: Omit<SimulationOptions, "seed"> }[] = [
  {
    // Figure 8: the targeted schedule drives 5 nodes into the paper's figure; one entry per
    // append message so a follower acknowledges old-term entries before the new leader's no-op.
    name: "figure8",
    options: {
      nodes: 5,
      durationMs: 8000,
      faults: [],
      membership: false,
      schedule: "figure8",
      maxSizePerMsgBytes: 1,
      network: { minDelayMs: 1, maxDelayMs: 10, lossRate: 0, duplicateRate: 0 },
      bugs: { figure8: true },
    },
  },
  {
    name: "no-up-to-date-check",
    options: {
      nodes: 5,
      durationMs: 10_000,
      faults: ["partition", "crash", "pause"],
      bugs: { noUpToDateCheck: true },
    },
  },
  {
    // A vote that is not durable is lost on a restart: power losses start election races, and
    // voters crash right after voting and come back at once, free to vote again in the term.
    name: "forget-vote",
    options: {
      nodes: 5,
      durationMs: 8000,
      faults: ["power-loss"],
      faultIntervalMs: { min: 1500, max: 2500 },
      crashAfterVoteRate: 1,
      network: { minDelayMs: 1, maxDelayMs: 100, lossRate: 0, duplicateRate: 0 },
      bugs: { forgetVote: true },
    },
  },
];

describe("planted bugs are caught", () => {
  it("(i) a disk that acknowledges writes before they are durable", async () => {
    const found = await firstViolation(
      { durationMs: 8000, faults: ["crash"], bugs: { ackBeforeDurable: true } },
      SEEDS,
    );
    report("ack-before-durable", found);
    expect(found, "no seed caught the lost acknowledged writes").toBeDefined();
    expect(found?.replay).toContain("--bug ack-before-durable");
    expect(found?.traceTail.length).toBeGreaterThan(0);
  }, 120_000);

  for (const { name, options } of CORE_BUGS) {
    it(`(core) ${name}`, async () => {
      const found = await firstViolation(options, SEEDS);
      report(name, found);
      expect(found, `no seed in ${MAX_SEEDS} caught ${name}`).toBeDefined();
      expect(found?.replay).toContain(`--bug ${name}`);
      expect(found?.properties.some((p) => SAFETY.includes(p))).toBe(true);
      expect(found?.traceTail.length).toBeGreaterThan(0);
    }, 120_000);

    it(`(core) the ${name} settings pass without the bug`, async () => {
      const { bugs: _bugs, ...withoutBug } = options;
      const found = await firstViolation(withoutBug, SEEDS.slice(0, 3));
      expect(found).toBeUndefined();
    }, 120_000);
  }

  it("(ii) a replica whose compare-and-set ignores the expected value", async () => {
    const found = await firstViolation(
      { durationMs: 5000, bugs: { casIgnoresExpectedOnNode: 1 } },
      SEEDS,
    );
    report("cas-ignores-expected", found);
    expect(found).toBeDefined();
    expect(found?.properties).toContain("state-machine-safety");
  }, 120_000);

  it("(iii) a transport that turns rejected vote responses into granted ones", async () => {
    const found = await firstViolation(
      {
        durationMs: 8000,
        faults: ["partition", "crash", "pause"],
        bugs: { grantAllVotes: true },
      },
      SEEDS,
    );
    report("grant-all-votes", found);
    expect(found).toBeDefined();
    expect(found?.properties.some((p) => SAFETY.includes(p))).toBe(true);
  }, 120_000);

  it("the same runs pass without the bugs", async () => {
    const found = await firstViolation({ durationMs: 8000, faults: ["crash"] }, SEEDS.slice(0, 4));
    expect(found).toBeUndefined();
  }, 120_000);
});
