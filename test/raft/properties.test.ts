/**
 * Randomized property tests of the consensus core: fast-check draws fault schedules (see
 * random-schedule.ts) that run on 3 to 5 in-memory nodes while the SafetyChecker (safety.ts)
 * checks Raft's safety properties after every step; each run ends with a liveness check.
 *
 * Replaying a failure: fast-check prints the seed and path of the shrunk counterexample; the
 * error message ends with the command that replays exactly that run, e.g.
 *   FC_SEED=123 FC_PATH="4:2:1" npx vitest run test/raft/properties.test.ts -t "3 nodes"
 * RAFT_PROPERTY_RUNS scales the number of runs (e.g. 10 for a long soak; 0.1 for a quick look).
 */
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { RaftLog } from "../../src/raft/log.js";
import { ReadOnlyOption } from "../../src/raft/read-only.js";
import { MessageType, type Entry } from "../../src/raft/types.js";
import { bytes, TestCluster } from "./cluster.js";
import {
  ALL_FAULTS,
  ALL_FAULTS_WITH_READS,
  NETWORK_FAULTS,
  scheduleArbitrary,
  ScheduleDriver,
  type FaultProfile,
  type Schedule,
  type ScheduleOptions,
} from "./random-schedule.js";
import { SafetyChecker, SafetyViolation } from "./safety.js";

const RUN_SCALE = Number(process.env.RAFT_PROPERTY_RUNS ?? "1");

/** The number of runs of a property, scaled by RAFT_PROPERTY_RUNS. */
function runs(base: number): number {
  return Math.max(1, Math.round(base * RUN_SCALE));
}

/**
 * fc.assert with a replayable failure: the seed comes from FC_SEED (else fast-check picks one)
 * and the path from FC_PATH, and a failure's message ends with the command replaying it.
 */
function assertProperty<T>(name: string, property: fc.IProperty<T>, numRuns: number): void {
  const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
  const path = process.env.FC_PATH;
  const params: fc.Parameters<T> = {
    numRuns,
    // Shrinking a long failing schedule can take minutes; stop it in time for the failure
    // (seed, path and the counterexample shrunk so far) to be reported before the test times
    // out. Normal runs take a fraction of this.
    interruptAfterTimeLimit: 45_000 * Math.max(1, RUN_SCALE),
    ...(seed === undefined ? {} : { seed }),
    ...(path === undefined ? {} : { path }),
  };
  try {
    fc.assert(property, params);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const failedSeed = /seed: (-?\d+)/.exec(message)?.[1] ?? String(seed);
    const failedPath = /path: "([^"]*)"/.exec(message)?.[1] ?? "";
    const replay =
      `\n\nReplay this run: FC_SEED=${failedSeed} FC_PATH="${failedPath}" ` +
      `npx vitest run test/raft/properties.test.ts -t "${name}"`;
    if (error instanceof Error) {
      error.message += replay;
      throw error;
    }
    throw new Error(message + replay, { cause: error });
  }
}

/** Per-run knobs shared by every property: flow-control limits and network quality. */
interface RunKnobs {
  readonly seed: number;
  readonly electionTicks: number;
  readonly maxSizePerMsgBytes: number;
  readonly maxInflightMessages: number;
  readonly maxCommittedSizePerReadyBytes: number;
  readonly maxUncommittedEntriesSizeBytes: number;
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly holdRate: number;
  readonly elected: boolean;
}

const knobs: fc.Arbitrary<RunKnobs> = fc.record({
  seed: fc.nat(),
  electionTicks: fc.integer({ min: 3, max: 10 }),
  // 1 byte: one entry per append and per Ready (finest interleavings); else roomy.
  maxSizePerMsgBytes: fc.constantFrom(1_048_576, 1, 100),
  maxInflightMessages: fc.constantFrom(256, 1, 2),
  maxCommittedSizePerReadyBytes: fc.constantFrom(16_777_216, 1),
  maxUncommittedEntriesSizeBytes: fc.constantFrom(67_108_864, 10),
  dropRate: fc.constantFrom(0.05, 0, 0.2),
  duplicateRate: fc.constantFrom(0.05, 0, 0.2),
  holdRate: fc.constantFrom(0.3, 0, 0.6),
  // Start with an elected leader (more replication per step) or from scratch.
  elected: fc.boolean(),
});

const SCHEDULE_LENGTH = { min: 50, max: 600 } as const;

/** Runs one schedule, checking safety after every step, then liveness. */
function runSchedule(
  nodes: number,
  k: RunKnobs,
  schedule: Schedule,
  extra: Pick<ScheduleOptions, "checkReads"> & {
    readonly config: NonNullable<ScheduleOptions["config"]>;
  },
): ScheduleDriver {
  const driver = new ScheduleDriver({
    nodes,
    seed: k.seed,
    dropRate: k.dropRate,
    duplicateRate: k.duplicateRate,
    holdRate: k.holdRate,
    checkReads: extra.checkReads ?? false,
    initialLeader: k.elected ? 1 + (k.seed % nodes) : undefined,
    config: {
      electionTicks: k.electionTicks,
      heartbeatTicks: 1,
      maxSizePerMsgBytes: k.maxSizePerMsgBytes,
      maxInflightMessages: k.maxInflightMessages,
      maxCommittedSizePerReadyBytes: k.maxCommittedSizePerReadyBytes,
      maxUncommittedEntriesSizeBytes: k.maxUncommittedEntriesSizeBytes,
      ...extra.config,
    },
  });
  driver.run(schedule.actions);
  driver.liveness();
  return driver;
}

function schedules(profile: FaultProfile): fc.Arbitrary<Schedule> {
  return scheduleArbitrary(profile, SCHEDULE_LENGTH);
}

describe("raft safety under random faults (fast-check)", () => {
  it("(a) 3 nodes, pre-vote and check-quorum on: loss, duplication, reordering, partitions", () => {
    assertProperty(
      "(a) 3 nodes",
      fc.property(knobs, schedules(NETWORK_FAULTS), (k, schedule) => {
        runSchedule(3, k, schedule, { config: { preVote: true, checkQuorum: true } });
      }),
      runs(1400),
    );
  });

  it("(b) 5 nodes, pre-vote and check-quorum off: loss, duplication, reordering, partitions", () => {
    assertProperty(
      "(b) 5 nodes",
      fc.property(knobs, schedules(NETWORK_FAULTS), (k, schedule) => {
        runSchedule(5, k, schedule, { config: { preVote: false, checkQuorum: false } });
      }),
      runs(800),
    );
  });

  it("(c) 3-5 nodes with crashes, restarts, compaction and snapshots", () => {
    assertProperty(
      "(c) 3-5 nodes with crashes",
      fc.property(
        fc.integer({ min: 3, max: 5 }),
        fc.boolean(),
        fc.boolean(),
        knobs,
        schedules(ALL_FAULTS),
        (nodes, preVote, checkQuorum, k, schedule) => {
          runSchedule(nodes, k, schedule, { config: { preVote, checkQuorum } });
        },
      ),
      runs(1100),
    );
  });

  it("(d) reads, lease-based or safe, do not affect safety; safe reads are linearizable", () => {
    assertProperty(
      "(d) reads",
      fc.property(
        fc.integer({ min: 3, max: 5 }),
        fc.boolean(),
        fc.constantFrom(ReadOnlyOption.Safe, ReadOnlyOption.LeaseBased),
        knobs,
        schedules(ALL_FAULTS_WITH_READS),
        (nodes, preVote, readOnlyOption, k, schedule) => {
          runSchedule(nodes, k, schedule, {
            // Lease-based reads need check-quorum.
            config: { preVote, checkQuorum: true, readOnlyOption },
            checkReads: readOnlyOption === ReadOnlyOption.Safe,
          });
        },
      ),
      runs(800),
    );
  });
});

describe("the safety checker detects violations", () => {
  /** A 3-node cluster with a leader (1) and the commands `commands` committed everywhere. */
  function healthy(...commands: string[]): { c: TestCluster; checker: SafetyChecker } {
    const c = new TestCluster({ voters: [1, 2, 3] });
    const checker = new SafetyChecker(c);
    c.elect(1);
    checker.observe();
    for (const command of commands) {
      c.propose(1, command);
      checker.observe();
    }
    return { c, checker };
  }

  function expectViolation(checker: SafetyChecker, property: string): void {
    let caught: unknown;
    try {
      checker.observe("tampering");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SafetyViolation);
    expect((caught as SafetyViolation).property).toBe(property);
  }

  it("two leaders in one term", () => {
    const { c, checker } = healthy("a");
    const r2 = c.raft(2);
    r2.role = "leader";
    r2.lead = 2;
    expectViolation(checker, "election safety");
  });

  it("two leaders in one term, the first since crashed", () => {
    const { c, checker } = healthy("a");
    c.crash(1);
    checker.observe();
    c.raft(3).role = "leader";
    expectViolation(checker, "election safety");
  });

  it("two logs with the same entry at an index but different entries below it", () => {
    const { c, checker } = healthy("a");
    // "b" reaches every log but is not committed yet (no acknowledgement delivered).
    c.node(1).raw.propose(bytes("b"));
    c.processReady(1);
    for (const m of c.queue.splice(0)) c.deliver(m);
    c.processReady(2);
    c.processReady(3);
    c.queue = [];
    c.node(1).raw.propose(bytes("c"));
    c.processReady(1);
    for (const m of c.queue.splice(0)) if (m.type === MessageType.App) c.deliver(m);
    c.processReady(2);
    c.processReady(3);
    c.queue = [];
    checker.observe();
    // Node 3's copy of "b" (same index, same term) now holds other data.
    const log = c.logEntries(3);
    const b = log.find((e) => e.data.length > 0 && new TextDecoder().decode(e.data) === "b")!;
    const tampered: Entry = { ...b, data: bytes("evil") };
    const rest = log.filter((e) => e.index > b.index);
    c.node(3).storage.append([tampered, ...rest]);
    expectViolation(checker, "log matching");
  });

  it("a committed entry overwritten", () => {
    const { c, checker } = healthy("a", "b");
    const log = c.logEntries(2);
    const first = log.find((e) => e.data.length > 0)!;
    const rest = log.filter((e) => e.index > first.index);
    c.node(2).storage.append([{ ...first, data: bytes("evil") }, ...rest]);
    expectViolation(checker, "committed entries never change");
  });

  it("a leader overwriting its own (uncommitted) entry", () => {
    const { c, checker } = healthy("a");
    c.node(1).raw.propose(bytes("b"));
    c.processReady(1);
    checker.observe();
    const last = c.logEntries(1).at(-1)!;
    c.node(1).storage.append([{ ...last, data: bytes("evil") }]);
    expectViolation(checker, "leader append-only");
  });

  it("a new leader missing a committed entry", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    const checker = new SafetyChecker(c);
    c.elect(1);
    c.isolate(3);
    c.propose(1, "a");
    c.heal();
    checker.observe();
    // Node 3 never got "a"; make it leader of a later term anyway.
    const r3 = c.raft(3);
    r3.term += 1;
    r3.role = "leader";
    expectViolation(checker, "leader completeness");
  });

  it("two nodes applying different entries at one index", () => {
    const { c, checker } = healthy("a");
    const index = c.raft(1).raftLog.lastIndex() + 1;
    // Node 2 "applies" an entry nobody proposed, then the real entry at that index commits.
    c.node(2).applied.push({ term: c.raft(1).term, index, type: 0, data: bytes("evil") });
    checker.observe();
    c.propose(1, "b");
    expectViolation(checker, "state machine safety");
  });

  it("a commit index going backwards", () => {
    const { c, checker } = healthy("a", "b");
    c.raft(2).raftLog.committed -= 1;
    expectViolation(checker, "monotonic commit");
  });

  it("a commit index past the end of the log", () => {
    const { c, checker } = healthy("a");
    c.raft(3).raftLog.committed += 5;
    expectViolation(checker, "commit within log");
  });

  it("two votes in one term", () => {
    const { c, checker } = healthy("a");
    const hs = c.node(2).storage.initialState().hardState;
    c.node(2).storage.setHardState({ ...hs, vote: hs.vote === 3 ? 1 : 3 });
    expectViolation(checker, "one vote per term");
  });

  it("a stale linearizable read", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    const checker = new SafetyChecker(c, { checkReads: true });
    c.elect(1);
    c.propose(1, "a");
    checker.observe();
    const context = bytes("read-1");
    checker.noteReadIssued(context);
    c.node(2).readStates.push({ index: 1, requestCtx: context });
    expectViolation(checker, "linearizable read");
  });
});

describe("the properties can fail", () => {
  const isUpToDate = RaftLog.prototype.isUpToDate;
  afterEach(() => {
    RaftLog.prototype.isUpToDate = isUpToDate;
  });

  it("finds a broken election rule (voters ignore how up to date the candidate is)", () => {
    // Mutation: grant votes to any candidate. Leaders then win without committed entries, and
    // the randomized schedules must catch it.
    RaftLog.prototype.isUpToDate = () => true;
    const details = fc.check(
      fc.property(knobs, schedules(ALL_FAULTS), (k, schedule) => {
        runSchedule(3, k, schedule, { config: { preVote: true, checkQuorum: true } });
      }),
      { numRuns: 300, seed: 42, endOnFailure: true },
    );
    expect(details.failed).toBe(true);
    expect(details.errorInstance).toBeInstanceOf(SafetyViolation);
  });
});
