/**
 * Fuzzing the receiving side of the peer transport with fast-check (issue #11): random bytes,
 * random length headers and mutated valid frames into the frame reader, the batch decoder, the
 * hello and a whole inbound connection. Whatever arrives: nothing throws out of the data
 * handler, memory held stays within a bound set by the bytes received (never by a length
 * announced), and every outcome is either valid messages handed on or the connection closed.
 */
import { EventEmitter } from "node:events";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, TooLargeError } from "../../src/common/errors.js";
import type { Clock, TimerHandle } from "../../src/common/clock.js";
import { message, MessageType, type Message } from "../../src/raft/types.js";
import { decodeBatchFrame, encodeBatchFrame } from "../../src/transport/batch-codec.js";
import { decodeFrame, encodeFrame, frame, PROTOCOL_VERSION } from "../../src/transport/codec.js";
import { FrameReader, INITIAL_BODY_BYTES } from "../../src/transport/frame-reader.js";
import { HelloSchema } from "../../src/transport/gen/blixard/raft/v1/raft_pb.js";
import { InboundConnection } from "../../src/transport/inbound-connection.js";
import { DEFAULT_TRANSPORT_LIMITS } from "../../src/transport/limits.js";
import { SILENT_LOGGER } from "../../src/common/logger.js";
import { RefusalLog } from "../../src/transport/refusal-log.js";
import { invalidMessageReason } from "../../src/transport/validate-message.js";
import { create } from "@bufbuild/protobuf";
import type { Socket } from "node:net";

const RUNS = 400;
const CLUSTER = "fuzz";

/** Timers that fire only when told to. */
class ManualClock implements Clock {
  private nowMs = 0;
  now(): number {
    return this.nowMs;
  }
  setTimer(_delayMs: number, _callback: () => void): TimerHandle {
    return { cancel: () => undefined };
  }
}

/** Just enough of a net.Socket for an InboundConnection. */
class FakeSocket extends EventEmitter {
  readonly remoteAddress = "10.0.0.9";
  readonly remotePort = 4242;
  destroyed = false;
  ended = false;
  setNoDelay(): this {
    return this;
  }
  write(): boolean {
    return true;
  }
  end(): this {
    this.ended = true;
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}

function helloFrame(fromId = 1, toId = 2): Uint8Array {
  const value = create(HelloSchema, {
    clusterId: CLUSTER,
    fromId: BigInt(fromId),
    toId: BigInt(toId),
    protocolVersion: PROTOCOL_VERSION,
  });
  return encodeFrame(frame({ case: "hello", value }));
}

const validMessages: Message[] = [
  message({ type: MessageType.Heartbeat, from: 1, to: 2, term: 3, commit: 5 }),
  message({
    type: MessageType.App,
    from: 1,
    to: 2,
    term: 3,
    index: 4,
    logTerm: 2,
    commit: 4,
    entries: [{ term: 3, index: 5, type: 0, data: new Uint8Array([1, 2, 3]) }],
  }),
  message({ type: MessageType.PreVote, from: 1, to: 2, term: 4, index: 9, logTerm: 3 }),
];

const validBatch = encodeBatchFrame({
  clusterId: CLUSTER,
  from: 1,
  to: 2,
  messages: validMessages,
});

/** A valid stream (hello, then a batch), with some bytes changed, inserted or cut. */
const mutatedStream: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.option(fc.nat(), { nil: undefined }),
  )
  .map(([flips, cut]) => {
    const stream = new Uint8Array([...helloFrame(), ...validBatch]);
    for (const [position, value] of flips) stream[position % stream.length] = value;
    return cut === undefined ? stream : stream.subarray(0, cut % (stream.length + 1));
  });

/** A 4-byte length header with any length, then some bytes. */
const lengthHeaderThenBytes: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.integer({ min: 0, max: 0xffff_ffff }), fc.uint8Array({ maxLength: 64 }))
  .map(([length, rest]) => {
    const out = new Uint8Array(4 + rest.length);
    new DataView(out.buffer).setUint32(0, length);
    out.set(rest, 4);
    return out;
  });

/** Some stream, cut into chunks at random places. */
const chunkedStream = fc
  .tuple(
    fc.oneof(
      mutatedStream,
      lengthHeaderThenBytes,
      fc.uint8Array({ maxLength: 300 }),
      // A valid hello followed by garbage.
      fc.uint8Array({ maxLength: 200 }).map((rest) => new Uint8Array([...helloFrame(), ...rest])),
    ),
    fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
  )
  .map(([stream, sizes]) => {
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (let i = 0; offset < stream.length; i++) {
      const size = sizes[i % sizes.length]!;
      chunks.push(stream.subarray(offset, offset + size));
      offset += size;
    }
    return chunks;
  });

describe("fuzz: FrameReader", () => {
  it("throws only TooLargeError and holds at most max(64 KiB, twice the bytes received)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 20 }),
        fc.integer({ min: 0, max: 1 << 24 }),
        (chunks, limit) => {
          const reader = new FrameReader(limit);
          for (const chunk of chunks) {
            try {
              reader.push(chunk);
            } catch (error) {
              expect(error).toBeInstanceOf(TooLargeError);
              return;
            }
            expect(reader.allocatedBytes).toBeLessThanOrEqual(
              4 + Math.max(INITIAL_BODY_BYTES, 2 * reader.bufferedBytes),
            );
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("allocates nothing like the announced length: a 4 GiB header then a few bytes", () => {
    const reader = new FrameReader(0xffff_ffff);
    const header = new Uint8Array(8);
    new DataView(header.buffer).setUint32(0, 0xffff_ffff);
    reader.push(header);
    expect(reader.allocatedBytes).toBeLessThanOrEqual(4 + INITIAL_BODY_BYTES);
    // Then 1 MiB arrives: the buffer grows with it, to at most twice that.
    for (let i = 0; i < 16; i++) reader.push(new Uint8Array(64 * 1024));
    expect(reader.bufferedBytes).toBe(4 + 16 * 64 * 1024);
    expect(reader.allocatedBytes).toBeLessThanOrEqual(4 + 2 * 16 * 64 * 1024 + 8);
  });
});

describe("fuzz: decoders", () => {
  it("the batch decoder and the frame (hello) decoder throw only InvalidArgumentError", () => {
    fc.assert(
      fc.property(fc.oneof(mutatedStream, fc.uint8Array({ maxLength: 300 })), (bytes) => {
        const body = bytes.subarray(Math.min(4, bytes.length));
        for (const decode of [decodeBatchFrame, decodeFrame]) {
          try {
            decode(body);
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidArgumentError);
          }
        }
      }),
      { numRuns: RUNS * 2 },
    );
  });
});

describe("fuzz: InboundConnection", () => {
  it("never throws out of onData, stays within its memory bound, and either delivers valid messages or closes", () => {
    let runsThatDelivered = 0;
    let runsThatClosed = 0;
    fc.assert(
      fc.property(chunkedStream, (chunks) => {
        const socket = new FakeSocket();
        const delivered: Message[] = [];
        const limits = DEFAULT_TRANSPORT_LIMITS;
        const connection = new InboundConnection(socket as unknown as Socket, {
          selfId: 2,
          clusterId: CLUSTER,
          clock: new ManualClock(),
          logger: SILENT_LOGGER,
          refusals: new RefusalLog(new ManualClock(), SILENT_LOGGER, 0),
          limits,
          requireCertificateIdentity: false,
          isKnownPeer: (id) => id === 1 || id === 3,
          onAccepted: () => undefined,
          onMessages: (messages) => delivered.push(...messages),
          onClosed: () => undefined,
        });
        let received = 0;
        for (const chunk of chunks) {
          received += chunk.length;
          expect(() => socket.emit("data", Buffer.from(chunk))).not.toThrow();
          const bound =
            connection.peerId === undefined
              ? 4 + limits.maxHelloFrameSizeBytes
              : 4 + Math.max(INITIAL_BODY_BYTES, 2 * received);
          expect(connection.bufferedBytes).toBeLessThanOrEqual(bound);
          if (socket.destroyed || socket.ended) break;
        }
        for (const m of delivered) {
          expect(invalidMessageReason(m, { from: 1, to: 2 }, limits)).toBeUndefined();
        }
        if (delivered.length > 0) runsThatDelivered++;
        if (socket.destroyed || socket.ended) runsThatClosed++;
      }),
      { numRuns: RUNS * 2 },
    );
    // Not a degenerate run: some streams got through, many were refused.
    expect(runsThatDelivered).toBeGreaterThan(0);
    expect(runsThatClosed).toBeGreaterThan(RUNS / 4);
  });

  it("closes at once, allocating nothing, a stranger announcing a frame above the hello limit", () => {
    const socket = new FakeSocket();
    const connection = new InboundConnection(socket as unknown as Socket, {
      selfId: 2,
      clusterId: CLUSTER,
      clock: new ManualClock(),
      logger: SILENT_LOGGER,
      refusals: new RefusalLog(new ManualClock(), SILENT_LOGGER, 0),
      limits: DEFAULT_TRANSPORT_LIMITS,
      requireCertificateIdentity: false,
      isKnownPeer: () => true,
      onAccepted: () => undefined,
      onMessages: () => undefined,
      onClosed: () => undefined,
    });
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 16 * 1024 * 1024 - 1);
    socket.emit("data", Buffer.from(header));
    expect(socket.ended || socket.destroyed).toBe(true);
    expect(connection.bufferedBytes).toBeLessThanOrEqual(4);
  });
});
