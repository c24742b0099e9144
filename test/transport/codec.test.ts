import fc from "fast-check";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import type { ConfState, Entry, Message, MessageType, Snapshot } from "../../src/raft/types.js";
import {
  decodeFrame,
  encodeFrame,
  frame,
  fromWireMessage,
  toWireMessage,
} from "../../src/transport/codec.js";
import { FrameReader } from "../../src/transport/frame-reader.js";
import { decodeBatchFrame, encodeBatchFrame } from "../../src/transport/batch-codec.js";
import {
  MessageBatchSchema,
  MessageSchema,
} from "../../src/transport/gen/blixard/raft/v1/raft_pb.js";

const index = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const nodeId = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const bytes = fc.uint8Array({ maxLength: 64 });

const entry: fc.Arbitrary<Entry> = fc.record({
  term: index,
  index,
  type: fc.constantFrom(0, 1) as fc.Arbitrary<Entry["type"]>,
  data: bytes,
});

const confState: fc.Arbitrary<ConfState> = fc.record({
  voters: fc.array(nodeId, { maxLength: 5 }),
  learners: fc.array(nodeId, { maxLength: 3 }),
  votersOutgoing: fc.array(nodeId, { maxLength: 5 }),
  learnersNext: fc.array(nodeId, { maxLength: 3 }),
  autoLeave: fc.boolean(),
});

const snapshot: fc.Arbitrary<Snapshot> = fc.record({
  metadata: fc.record({ index, term: index, confState }),
  data: fc.uint8Array({ maxLength: 256 }),
});

const messageArbitrary: fc.Arbitrary<Message> = fc.record(
  {
    type: fc.integer({ min: 0, max: 18 }) as fc.Arbitrary<MessageType>,
    to: index,
    from: index,
    term: index,
    logTerm: index,
    index,
    entries: fc.array(entry, { maxLength: 5 }),
    commit: index,
    snapshot,
    reject: fc.boolean(),
    rejectHint: index,
    context: bytes,
  },
  {
    requiredKeys: [
      "type",
      "to",
      "from",
      "term",
      "logTerm",
      "index",
      "entries",
      "commit",
      "reject",
      "rejectHint",
    ],
  },
);

/** Through a whole frame and the stream splitter, as on the wire. */
/** An append from 1 to 2 carrying `entries`. */
function appendOf(entries: Entry[]): Message {
  return {
    type: 3,
    to: 2,
    from: 1,
    term: 1,
    logTerm: 1,
    index: 1,
    entries,
    commit: 0,
    reject: false,
    rejectHint: 0,
  };
}

function roundTrip(messages: readonly Message[]): Message[] {
  const value = create(MessageBatchSchema, {
    clusterId: "c",
    from: 1n,
    to: 2n,
    messages: messages.map((m) => toWireMessage(m, true)),
  });
  const [body] = new FrameReader(1 << 24).push(encodeFrame(frame({ case: "batch", value })));
  const decoded = decodeFrame(body!);
  if (decoded.kind.case !== "batch") throw new Error("not a batch");
  return decoded.kind.value.messages.map(fromWireMessage);
}

describe("codec", () => {
  it("round-trips any message, field for field", () => {
    fc.assert(
      fc.property(fc.array(messageArbitrary, { maxLength: 8 }), (messages) => {
        expect(roundTrip(messages)).toEqual(messages);
      }),
      { numRuns: 300 },
    );
  });

  it("leaves snapshot data out of a batch unless asked", () => {
    const m = fc.sample(
      messageArbitrary.filter((x) => x.snapshot !== undefined && x.snapshot.data.length > 0),
      1,
    )[0]!;
    const wire = toWireMessage(m);
    expect(wire.snapshot?.data.length).toBe(0);
    expect(fromWireMessage(wire).snapshot?.metadata).toEqual(m.snapshot!.metadata);
  });

  it("decodes entry data as views into the frame, not copies", () => {
    const data = new Uint8Array(1000).fill(7);
    const [m] = roundTrip([appendOf([{ term: 1, index: 2, type: 0, data }])]);
    const decoded = m!.entries[0]!.data;
    expect(decoded).toEqual(data);
    expect(decoded.buffer.byteLength).toBeGreaterThan(decoded.length);
  });

  it("refuses numbers past 2^53, unknown types and malformed bytes", () => {
    const base = { type: 3, to: 2n, from: 1n };
    expect(() => fromWireMessage(create(MessageSchema, { ...base, term: 2n ** 60n }))).toThrow(
      /exceeds/,
    );
    expect(() => fromWireMessage(create(MessageSchema, { ...base, type: 99 }))).toThrow(
      /unknown raft message type/,
    );
    expect(() => decodeFrame(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(/malformed frame/);
  });
});

/** The generated codec's bytes for the same batch, for byte-level comparison. */
function generatedBatchFrame(messages: readonly Message[]): Uint8Array {
  const value = create(MessageBatchSchema, {
    clusterId: "cluster-é",
    from: 1n,
    to: 2n,
    messages: messages.map((m) => toWireMessage(m, true)),
  });
  return encodeFrame(frame({ case: "batch", value }));
}

describe("batch codec (hand-written hot path)", () => {
  it("writes the same bytes as the generated code, and reads them back", () => {
    fc.assert(
      fc.property(fc.array(messageArbitrary, { maxLength: 8 }), (messages) => {
        const fast = encodeBatchFrame({ clusterId: "cluster-é", from: 1, to: 2, messages }, true);
        expect(Buffer.from(fast)).toEqual(Buffer.from(generatedBatchFrame(messages)));
        const decoded = decodeBatchFrame(fast.subarray(4));
        expect(decoded).toEqual({ clusterId: "cluster-é", from: 1, to: 2, messages });
        // And the generated decoder agrees with the hand-written encoder.
        const generated = decodeFrame(fast.subarray(4));
        expect(generated.kind.case).toBe("batch");
      }),
      { numRuns: 300 },
    );
  });

  it("decodes entry data as copies of their own, not views that would keep the frame alive", () => {
    const data = new Uint8Array(1000).fill(7);
    const entries = [
      { term: 1, index: 2, type: 0 as const, data },
      { term: 1, index: 3, type: 0 as const, data: new Uint8Array(0) },
    ];
    const frame = encodeBatchFrame({
      clusterId: "c",
      from: 1,
      to: 2,
      messages: [appendOf(entries)],
    });
    // As a socket read hands it over: a Buffer (whose slice() is a view) holding more.
    const read = Buffer.concat([Buffer.from(frame.subarray(4)), Buffer.alloc(4096)]);
    const decoded = decodeBatchFrame(read.subarray(0, frame.length - 4)).messages[0]!.entries;
    expect(decoded[0]!.data).toEqual(data);
    // Exactly its own bytes: a kv value kept as a view of it keeps nothing else alive.
    expect(decoded[0]!.data.buffer).not.toBe(read.buffer);
    expect(decoded[0]!.data.byteOffset).toBe(0);
    expect(decoded[0]!.data.buffer.byteLength).toBe(data.length);
    expect(decoded[1]!.data.length).toBe(0);
    expect(decoded[1]!.data.buffer).not.toBe(read.buffer);
  });

  it("reads unpacked repeated ids and skips unknown fields", () => {
    // ConfState{voters: 5 (unpacked), field 9: varint 1} inside metadata inside snapshot.
    const conf = [0x08, 0x05, 0x48, 0x01];
    const metadata = [0x1a, conf.length, ...conf];
    const snapshot = [0x0a, metadata.length, ...metadata];
    const message = [0x08, 0x07, 0x4a, snapshot.length, ...snapshot, 0x78, 0x01];
    const batch = [0x22, message.length, ...message];
    const body = new Uint8Array([0x22, batch.length, ...batch]);
    const decoded = decodeBatchFrame(body);
    expect(decoded.messages[0]!.snapshot!.metadata.confState.voters).toEqual([5]);
  });

  it("refuses truncated input and numbers past 2^53", () => {
    const good = encodeBatchFrame({
      clusterId: "c",
      from: 1,
      to: 2,
      messages: [
        {
          type: 3,
          to: 2,
          from: 1,
          term: 9,
          logTerm: 1,
          index: 1,
          entries: [],
          commit: 0,
          reject: false,
          rejectHint: 0,
        },
      ],
    }).subarray(4);
    expect(() => decodeBatchFrame(good.subarray(0, good.length - 1))).toThrow(/malformed batch/);
    const huge = new Uint8Array([
      0x22, 0x0c, 0x22, 0x0a, 0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ]);
    expect(() => decodeBatchFrame(huge)).toThrow(/exceeds 2\^53/);
  });

  it("asserts on encode what decode refuses: our own bugs fail loudly instead of reaching a peer", () => {
    const base: Message = {
      type: 3 as MessageType,
      to: 2,
      from: 1,
      term: 9,
      logTerm: 1,
      index: 1,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
    };
    const encode = (m: Message) => () =>
      encodeBatchFrame({ clusterId: "c", from: 1, to: 2, messages: [m] });
    expect(encode(base)).not.toThrow();
    expect(encode({ ...base, term: Number.MAX_SAFE_INTEGER + 1 })).toThrow(
      /invariant violated: a varint must be a safe unsigned integer/,
    );
    expect(encode({ ...base, index: -1 })).toThrow(/invariant violated: a varint/);
    expect(encode({ ...base, type: 19 as MessageType })).toThrow(
      /invariant violated: unknown raft message type/,
    );
    const badEntry: Entry = { term: 1, index: 2, type: 2 as Entry["type"], data: new Uint8Array() };
    expect(encode({ ...base, entries: [badEntry] })).toThrow(
      /invariant violated: unknown entry type/,
    );
    const conf: ConfState = {
      voters: [1, 0],
      learners: [],
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    };
    const snap: Snapshot = {
      metadata: { index: 5, term: 1, confState: conf },
      data: new Uint8Array(),
    };
    expect(encode({ ...base, type: 7 as MessageType, snapshot: snap })).toThrow(
      /invariant violated: node id 0 in a configuration/,
    );
  });
});

describe("FrameReader", () => {
  it("splits frames however the stream is cut", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
        (bodies, cuts) => {
          const stream = Buffer.concat(
            bodies.flatMap((b) => {
              const header = Buffer.alloc(4);
              header.writeUInt32BE(b.length);
              return [header, Buffer.from(b)];
            }),
          );
          const reader = new FrameReader(1000);
          const out: Uint8Array[] = [];
          let offset = 0;
          for (let i = 0; offset < stream.length; i++) {
            const size = cuts[i % cuts.length]!;
            out.push(...reader.push(stream.subarray(offset, offset + size)));
            offset += size;
          }
          expect(out.map((b) => Buffer.from(b))).toEqual(bodies.map((b) => Buffer.from(b)));
          expect(reader.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refuses a frame whose declared length is over the limit", () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1001);
    expect(() => new FrameReader(1000).push(header)).toThrow(/exceeds the limit of 1000 bytes/);
  });
});
