import { describe, expect, it } from "vitest";
import {
  InvalidArgumentError,
  TooLargeError,
  UnavailableError,
} from "../../../src/common/errors.js";
import { MAX_BATCH_TEXT_CHARS } from "../../../src/orchestrator/agent/report-batch.js";
import { Reporter, SINGLES_AFTER_REFUSAL_MS } from "../../../src/orchestrator/agent/reporter.js";
import type {
  AgentReport,
  BatchItemOutcome,
  OrchestratorCommand,
} from "../../../src/statemachine/orchestrator/commands.js";
import { MAX_AGENT_REPORTS_PER_BATCH } from "../../../src/statemachine/orchestrator/limits.js";
import { ManualClock, flushPromises } from "../../node/fakes.js";

const SILENT = { debug: () => undefined, info: () => undefined, warn: () => undefined };

/** A proposal the test answers by hand. */
interface Call {
  readonly command: OrchestratorCommand;
  resolve(answer: unknown): void;
  reject(error: unknown): void;
}

/** A proposer that holds every proposal until the test settles it. */
class HeldProposer {
  readonly calls: Call[] = [];
  #answered = 0;

  propose(command: OrchestratorCommand): Promise<unknown> {
    return new Promise((resolve, reject) => this.calls.push({ command, resolve, reject }));
  }

  /** The proposals not looked at yet, as short strings (a batch lists its reports' ids). */
  fresh(): Call[] {
    const calls = this.calls.slice(this.#answered);
    this.#answered = this.calls.length;
    return calls;
  }
}

function started(id: string, nodeId = 1): AgentReport {
  return { type: "taskStarted", id, nodeId, attempt: 1 };
}

function finished(id: string, stdout = ""): AgentReport {
  return {
    type: "taskFinished",
    id,
    nodeId: 1,
    attempt: 1,
    outcome: "succeeded",
    result: {
      exitCode: 0,
      stdout,
      stderr: "",
      stdoutTruncated: false,
      stderrTruncated: false,
      durationMs: 1,
      error: "",
    },
  };
}

/** What a proposal carried: `started:a` for a single report, `[started:a finished:b]` for a batch. */
function describeCall(call: Call): string {
  const one = (c: OrchestratorCommand): string =>
    `${c.type.replace("task", "").toLowerCase()}:${"id" in c ? c.id : "?"}`;
  return call.command.type === "agentReports"
    ? `[${call.command.reports.map(one).join(" ")}]`
    : one(call.command);
}

function applied(id: string): BatchItemOutcome {
  return { ok: true, id, status: "running", nodeId: 1 };
}

function refused(id: string, code: "CONFLICT" | "NOT_FOUND" | "OVERLOADED"): BatchItemOutcome {
  return { ok: false, id, code, message: `refused ${code}` };
}

/** Answers a batch with one outcome per report: the ids in `refusals` get theirs. */
function answerBatch(
  call: Call,
  refusals: Record<string, "CONFLICT" | "NOT_FOUND" | "OVERLOADED"> = {},
): void {
  if (call.command.type !== "agentReports") throw new Error(`not a batch: ${describeCall(call)}`);
  const items = call.command.reports.map((r) => {
    const id = "id" in r ? r.id : r.name;
    const code = refusals[id];
    return code === undefined ? applied(id) : refused(id, code);
  });
  call.resolve({ accepted: true, items });
}

function setUp(): { clock: ManualClock; proposer: HeldProposer; reporter: Reporter } {
  const clock = new ManualClock();
  const proposer = new HeldProposer();
  return { clock, proposer, reporter: new Reporter(proposer, clock, SILENT) };
}

describe("Reporter batching", () => {
  it("sends the reports of one turn as one agentReports batch, and a lone report as itself", async () => {
    const { clock, proposer, reporter } = setUp();
    reporter.report("task:a", started("a"));
    reporter.report("task:b", started("b"));
    reporter.report("task:c", finished("c"));
    await flushPromises();
    const [batch, ...rest] = proposer.fresh();
    expect(rest).toEqual([]);
    expect(batch && describeCall(batch)).toBe("[started:a started:b finished:c]");
    expect(batch?.command).toMatchObject({ type: "agentReports", nodeId: 1 });
    answerBatch(batch as Call);
    await clock.advance(0);
    expect(["a", "b", "c"].map((id) => reporter.pending(`task:${id}`))).toEqual([
      false,
      false,
      false,
    ]);

    reporter.report("task:d", started("d"));
    await flushPromises();
    expect(proposer.fresh().map(describeCall)).toEqual(["started:d"]);
  });

  it("collects reports while a batch is in flight, the newest per key replacing an unsent one", async () => {
    const { clock, proposer, reporter } = setUp();
    reporter.report("task:a", started("a"));
    await flushPromises();
    const [first] = proposer.fresh();
    expect(first && describeCall(first)).toBe("started:a");

    // In flight: a's finish waits behind a's start (one in flight per key), b's start is
    // replaced by b's finish, and c joins them.
    reporter.report("task:a", finished("a"));
    reporter.report("task:b", started("b"));
    await flushPromises();
    reporter.report("task:b", finished("b"));
    reporter.report("task:c", started("c"));
    await flushPromises();
    expect(proposer.fresh()).toEqual([]);

    first?.resolve({ type: "task" });
    await flushPromises();
    const [second, ...rest] = proposer.fresh();
    expect(rest).toEqual([]);
    expect(second && describeCall(second)).toBe("[finished:b started:c finished:a]");
    answerBatch(second as Call);
    await clock.advance(10_000);
    expect(proposer.fresh()).toEqual([]);
    expect(reporter.pending("task:a") || reporter.pending("task:b")).toBe(false);
  });

  it("settles each report of a batch by its own outcome: applied, dropped for good, or retried", async () => {
    const { clock, proposer, reporter } = setUp();
    for (const id of ["ok", "stale", "gone", "busy"]) reporter.report(`task:${id}`, started(id));
    await flushPromises();
    answerBatch(proposer.fresh()[0] as Call, {
      stale: "CONFLICT",
      gone: "NOT_FOUND",
      busy: "OVERLOADED",
    });
    await flushPromises();
    expect(reporter.pending("task:ok")).toBe(false);
    expect(reporter.pending("task:stale")).toBe(false);
    expect(reporter.pending("task:gone")).toBe(false);
    expect(reporter.pending("task:busy")).toBe(true);
    expect(proposer.fresh()).toEqual([]);

    // Only the overloaded one comes back, after its backoff.
    await clock.advance(100);
    const retries = proposer.fresh();
    expect(retries.map(describeCall)).toEqual(["started:busy"]);
    retries[0]?.resolve({ type: "task" });
    await clock.advance(10_000);
    expect(reporter.pending("task:busy")).toBe(false);
    expect(proposer.fresh()).toEqual([]);
  });

  it("retries each report of a batch lost as a whole, with backoff, until it is applied", async () => {
    const { clock, proposer, reporter } = setUp();
    reporter.report("task:a", started("a"));
    reporter.report("task:b", started("b"));
    await flushPromises();
    proposer.fresh()[0]?.reject(new UnavailableError("no leader"));
    await flushPromises();
    expect(proposer.fresh()).toEqual([]);
    await clock.advance(99);
    expect(proposer.fresh()).toEqual([]);
    await clock.advance(1);
    const [again, ...rest] = proposer.fresh();
    expect(rest).toEqual([]);
    expect(again && describeCall(again)).toBe("[started:a started:b]");
    // A second loss backs off longer (200 ms).
    again?.reject(new UnavailableError("no leader"));
    await clock.advance(199);
    expect(proposer.fresh()).toEqual([]);
    await clock.advance(1);
    const [third] = proposer.fresh();
    expect(third && describeCall(third)).toBe("[started:a started:b]");
    answerBatch(third as Call);
    await clock.advance(10_000);
    expect(reporter.pending("task:a") || reporter.pending("task:b")).toBe(false);
  });

  it("retries the reports of a batch answered without one outcome each", async () => {
    const { clock, proposer, reporter } = setUp();
    reporter.report("task:a", started("a"));
    reporter.report("task:b", started("b"));
    await flushPromises();
    proposer.fresh()[0]?.resolve({ accepted: true });
    await clock.advance(100);
    const [again] = proposer.fresh();
    expect(again && describeCall(again)).toBe("[started:a started:b]");
  });

  it("sends each report on its own when a batch is refused as a whole, then batches again after a pause", async () => {
    const { clock, proposer, reporter } = setUp();
    reporter.report("task:a", started("a"));
    reporter.report("task:b", started("b"));
    await flushPromises();
    // What a server of the release before (or one mid-upgrade) answers.
    proposer.fresh()[0]?.reject(new InvalidArgumentError("orchestrator command.type must be …"));
    await flushPromises();
    const singles = proposer.fresh();
    expect(singles.map(describeCall)).toEqual(["started:a", "started:b"]);
    // One of them is malformed after all: dropped alone; the other applies.
    singles[0]?.reject(new InvalidArgumentError("bad"));
    singles[1]?.resolve({ type: "task" });
    await flushPromises();
    expect(reporter.pending("task:a") || reporter.pending("task:b")).toBe(false);

    // During the pause, reports go one by one (and all at once, as before batching).
    reporter.report("task:c", started("c"));
    reporter.report("task:d", started("d"));
    await flushPromises();
    const pauseCalls = proposer.fresh();
    expect(pauseCalls.map(describeCall)).toEqual(["started:c", "started:d"]);
    for (const call of pauseCalls) call.resolve({ type: "task" });

    await clock.advance(SINGLES_AFTER_REFUSAL_MS);
    reporter.report("task:e", started("e"));
    reporter.report("task:f", started("f"));
    await flushPromises();
    expect(proposer.fresh().map(describeCall)).toEqual(["[started:e started:f]"]);
  });

  it("splits a batch refused as TOO_LARGE into single reports without pausing batches", async () => {
    const { clock, proposer, reporter } = setUp();
    reporter.report("task:a", finished("a"));
    reporter.report("task:b", finished("b"));
    await flushPromises();
    proposer.fresh()[0]?.reject(new TooLargeError("over the command limit"));
    await flushPromises();
    const singles = proposer.fresh();
    expect(singles.map(describeCall)).toEqual(["finished:a", "finished:b"]);
    for (const call of singles) call.resolve({ type: "task" });
    await clock.advance(0);
    reporter.report("task:c", started("c"));
    reporter.report("task:d", started("d"));
    await flushPromises();
    expect(proposer.fresh().map(describeCall)).toEqual(["[started:c started:d]"]);
  });

  it("bounds a batch by report count and by output text, and never mixes nodes", async () => {
    const { clock, proposer, reporter } = setUp();
    const count = MAX_AGENT_REPORTS_PER_BATCH + 10;
    for (let i = 0; i < count; i++) reporter.report(`task:${i}`, started(String(i)));
    await flushPromises();
    const [full, ...rest] = proposer.fresh();
    expect(rest).toEqual([]);
    expect(full?.command.type === "agentReports" && full.command.reports.length).toBe(
      MAX_AGENT_REPORTS_PER_BATCH,
    );
    answerBatch(full as Call);
    await flushPromises();
    const [tail] = proposer.fresh();
    expect(tail?.command.type === "agentReports" && tail.command.reports.length).toBe(10);
    answerBatch(tail as Call);
    await clock.advance(0);

    // Two reports whose outputs together pass the text budget go in two requests.
    const half = "x".repeat(MAX_BATCH_TEXT_CHARS / 2 + 1);
    reporter.report("task:big1", finished("big1", half));
    reporter.report("task:big2", finished("big2", half));
    reporter.report("task:other", started("other", 2));
    await flushPromises();
    const first = proposer.fresh();
    expect(first.map(describeCall)).toEqual(["finished:big1"]);
    first[0]?.resolve({ type: "task" });
    await flushPromises();
    const second = proposer.fresh();
    expect(second.map(describeCall)).toEqual(["finished:big2"]);
    second[0]?.resolve({ type: "task" });
    await flushPromises();
    const third = proposer.fresh();
    expect(third.map(describeCall)).toEqual(["started:other"]);
    expect(third[0]?.command).toMatchObject({ nodeId: 2 });
  });

  it("sends commands that are not agent reports on their own, beside a batch in flight", async () => {
    const { proposer, reporter } = setUp();
    reporter.report("task:a", started("a"));
    reporter.report("task:b", started("b"));
    reporter.report("worker", {
      type: "registerWorker",
      nodeId: 1,
      capacity: { cpuMillis: 1000, memoryMb: 1, diskGb: 1 },
      features: [],
    });
    await flushPromises();
    const calls = proposer
      .fresh()
      .map((c) => (c.command.type === "registerWorker" ? "registerWorker" : describeCall(c)));
    expect(calls.sort()).toEqual(["[started:a started:b]", "registerWorker"]);
  });

  it("drops what is queued or in flight on close", async () => {
    const { clock, proposer, reporter } = setUp();
    reporter.report("task:a", started("a"));
    reporter.report("task:b", started("b"));
    await flushPromises();
    reporter.report("task:c", started("c"));
    reporter.close();
    proposer.fresh()[0]?.reject(new UnavailableError("no leader"));
    await clock.advance(10_000);
    expect(proposer.fresh()).toEqual([]);
    expect(reporter.pending("task:c")).toBe(false);
  });
});
