/**
 * The transport's message validation: each rule refuses what it should, and (the pairing that
 * matters most) every message a real core sends under random faults passes, so validation can
 * never cut a healthy cluster's links.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeConfChange } from "../../src/raft/conf-change-codec.js";
import {
  ConfChangeTransition,
  ConfChangeType,
  EntryType,
  MAX_MESSAGE_TERM_OR_INDEX,
  message,
  MessageType,
  type Message,
} from "../../src/raft/types.js";
import { DEFAULT_TRANSPORT_LIMITS } from "../../src/transport/limits.js";
import { invalidMessageReason } from "../../src/transport/validate-message.js";
import {
  ALL_FAULTS_WITH_READS,
  scheduleArbitrary,
  ScheduleDriver,
} from "../raft/random-schedule.js";

const link = { from: 1, to: 2 };
const check = (m: Partial<Message> & Pick<Message, "type">): string | undefined =>
  invalidMessageReason(message({ from: 1, to: 2, ...m }), link, DEFAULT_TRANSPORT_LIMITS);

const app = (fields: Partial<Message>): string | undefined =>
  check({
    type: MessageType.App,
    term: 3,
    index: 4,
    logTerm: 2,
    entries: [{ term: 3, index: 5, type: EntryType.Normal, data: new Uint8Array(1) }],
    ...fields,
  });

describe("invalidMessageReason", () => {
  it("accepts the messages a healthy cluster sends", () => {
    expect(check({ type: MessageType.Heartbeat, term: 3, commit: 7 })).toBeUndefined();
    expect(app({})).toBeUndefined();
    expect(check({ type: MessageType.PreVote, term: 4, index: 9, logTerm: 3 })).toBeUndefined();
    expect(
      check({
        type: MessageType.Prop,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(3) }],
      }),
    ).toBeUndefined();
  });

  it("refuses terms, indexes and commits past 2^52, and term 0 where a term is needed", () => {
    expect(check({ type: MessageType.Heartbeat, term: 2 ** 53 - 1 })).toMatch(
      /term .* out of range/,
    );
    expect(check({ type: MessageType.Heartbeat, term: MAX_MESSAGE_TERM_OR_INDEX })).toBeUndefined();
    expect(check({ type: MessageType.Heartbeat, term: 1, commit: 2 ** 52 + 1 })).toMatch(/commit/);
    expect(check({ type: MessageType.AppResp, term: 1, index: 2 ** 53 - 1 })).toMatch(/index/);
    expect(check({ type: MessageType.Heartbeat, term: 0 })).toMatch(/term 0/);
    expect(check({ type: MessageType.Vote, term: 2, logTerm: 3 })).toMatch(/log term/);
  });

  it("refuses local message types and a sender or addressee other than the link's", () => {
    expect(check({ type: MessageType.Hup, term: 1 })).toMatch(/not sent between peers/);
    expect(check({ type: MessageType.CheckQuorum, term: 1 })).toMatch(/not sent between peers/);
    expect(check({ type: 99 as MessageType, term: 1 })).toMatch(/not sent between peers/);
    expect(check({ type: MessageType.Heartbeat, term: 1, from: 3 })).toMatch(/on the link/);
    expect(check({ type: MessageType.Heartbeat, term: 1, to: 3 })).toMatch(/on the link/);
  });

  it("refuses appends whose entries do not follow the index, or break term order", () => {
    expect(
      app({ entries: [{ term: 3, index: 9, type: EntryType.Normal, data: new Uint8Array(0) }] }),
    ).toMatch(/index 9/);
    expect(
      app({ entries: [{ term: 5, index: 5, type: EntryType.Normal, data: new Uint8Array(0) }] }),
    ).toMatch(/term 5/);
    expect(
      app({ entries: [{ term: 1, index: 5, type: EntryType.Normal, data: new Uint8Array(0) }] }),
    ).toMatch(/term 1/);
    expect(app({ index: MAX_MESSAGE_TERM_OR_INDEX })).toMatch(/past index 2\^52/);
    expect(
      app({
        entries: [{ term: 3, index: 5, type: EntryType.ConfChange, data: new Uint8Array([9, 9]) }],
      }),
    ).toMatch(/malformed conf change/);
    const goodChange = encodeConfChange({
      transition: ConfChangeTransition.Auto,
      changes: [{ type: ConfChangeType.AddNode, nodeId: 4 }],
      context: new Uint8Array(0),
    });
    expect(
      app({ entries: [{ term: 3, index: 5, type: EntryType.ConfChange, data: goodChange }] }),
    ).toBeUndefined();
  });

  it("refuses entries where none belong, proposals without entries, oversized contexts", () => {
    expect(
      check({
        type: MessageType.Heartbeat,
        term: 1,
        entries: [{ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(0) }],
      }),
    ).toMatch(/entries on a message/);
    expect(check({ type: MessageType.Prop })).toMatch(/without entries/);
    expect(
      check({ type: MessageType.Heartbeat, term: 1, context: new Uint8Array(64 * 1024) }),
    ).toMatch(/context/);
    expect(check({ type: MessageType.ReadIndex })).toMatch(/exactly one entry/);
  });

  it("refuses snapshots with out-of-range metadata or a malformed configuration", () => {
    const snap = (metadata: Record<string, unknown>): string | undefined =>
      check({
        type: MessageType.Snap,
        term: 3,
        snapshot: {
          metadata: {
            index: 10,
            term: 2,
            confState: {
              voters: [1, 2],
              learners: [],
              votersOutgoing: [],
              learnersNext: [],
              autoLeave: false,
            },
            ...metadata,
          },
          data: new Uint8Array(0),
        },
      });
    expect(snap({})).toBeUndefined();
    expect(snap({ index: 0 })).toMatch(/snapshot index/);
    expect(snap({ term: 4 })).toMatch(/snapshot term/);
    const conf = (c: Record<string, unknown>): Record<string, unknown> => ({
      confState: {
        voters: [1, 2],
        learners: [],
        votersOutgoing: [],
        learnersNext: [],
        autoLeave: false,
        ...c,
      },
    });
    expect(snap(conf({ voters: [] }))).toMatch(/without voters/);
    expect(snap(conf({ voters: [1, 1] }))).toMatch(/twice/);
    expect(snap(conf({ learners: [2] }))).toMatch(/both a voter and a learner/);
    expect(snap(conf({ autoLeave: true }))).toMatch(/joint-only/);
    expect(snap(conf({ voters: Array.from({ length: 2000 }, (_, i) => i + 1) }))).toMatch(
      /exceeds/,
    );
    expect(check({ type: MessageType.Snap, term: 3 })).toMatch(/without a snapshot/);
  });
});

describe("invalidMessageReason pairs with what a real core sends", () => {
  it("passes every message of random faulty schedules (elections, transfers, reads, snapshots)", () => {
    let checked = 0;
    const types = new Set<number>();
    fc.assert(
      fc.property(
        fc.nat(),
        fc.boolean(),
        scheduleArbitrary(ALL_FAULTS_WITH_READS, { min: 100, max: 300 }),
        (seed, preVote, schedule) => {
          const driver = new ScheduleDriver({
            nodes: 3,
            seed,
            config: { preVote, checkQuorum: preVote, electionTicks: 5, heartbeatTicks: 1 },
          });
          const c = driver.cluster;
          const deliver = c.deliver.bind(c);
          c.deliver = (m: Message) => {
            // A follower forwards a leadership transfer naming the transferee as its sender; the
            // runtime only transfers on the leader, so this never crosses a real link.
            if (!(m.type === MessageType.TransferLeader && m.from !== m.to)) {
              const reason = invalidMessageReason(
                m,
                { from: m.from, to: m.to },
                DEFAULT_TRANSPORT_LIMITS,
              );
              expect(reason, JSON.stringify({ ...m, entries: m.entries.length })).toBeUndefined();
              checked++;
              types.add(m.type);
            }
            deliver(m);
          };
          driver.run(schedule.actions);
          driver.liveness();
        },
      ),
      { numRuns: 60 },
    );
    expect(checked).toBeGreaterThan(1000);
    for (const type of [
      MessageType.App,
      MessageType.AppResp,
      MessageType.Heartbeat,
      MessageType.HeartbeatResp,
      MessageType.Snap,
    ]) {
      expect(types.has(type), `saw type ${type}`).toBe(true);
    }
  });
});
