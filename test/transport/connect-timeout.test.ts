/**
 * A peer link's connect timeout adapts to its connects' latency (peer-connection.ts): on a LAN a
 * dial whose SYN was dropped (a partition that just healed) is abandoned after 100 ms, not the
 * configured 500 ms; a link whose connects are slow keeps the whole configured timeout.
 */
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { SILENT_LOGGER } from "../../src/common/logger.js";
import { SeededRandom } from "../../src/common/random.js";
import { MessageType, message } from "../../src/raft/types.js";
import { encodeFrame, frame } from "../../src/transport/codec.js";
import { HelloAckSchema } from "../../src/transport/gen/blixard/raft/v1/raft_pb.js";
import { DEFAULT_TRANSPORT_LIMITS } from "../../src/transport/limits.js";
import { MIN_CONNECT_TIMEOUT_MS, PeerConnection } from "../../src/transport/peer-connection.js";
import { ManualClock } from "../node/fakes.js";

/** A socket that connects only when told to; destroying it closes it. */
class FakeSocket extends EventEmitter {
  connecting = true;
  readonly dialledAtMs: number;
  destroyedAtMs: number | undefined;
  constructor(
    private readonly clock: ManualClock,
    private readonly onConnected: () => void,
  ) {
    super();
    this.dialledAtMs = clock.now();
  }
  /** The TCP connect completes and the peer (node 2) accepts the hello. */
  accept(): void {
    this.connecting = false;
    this.onConnected();
    const ack = create(HelloAckSchema, { nodeId: 2n });
    this.emit("data", Buffer.from(encodeFrame(frame({ case: "helloAck", value: ack }))));
  }
  setNoDelay(): void {}
  setKeepAlive(): void {}
  cork(): void {}
  uncork(): void {}
  write(): boolean {
    return true;
  }
  destroy(): void {
    if (this.destroyedAtMs !== undefined) return;
    this.destroyedAtMs = this.clock.now();
    queueMicrotask(() => this.emit("close"));
  }
}

function link(clock: ManualClock): { connection: PeerConnection; dials: FakeSocket[] } {
  const dials: FakeSocket[] = [];
  const connection = new PeerConnection({
    selfId: 1,
    peerId: 2,
    clusterId: "c",
    address: { host: "10.0.0.2", port: 7001 },
    clock,
    random: new SeededRandom(7),
    logger: SILENT_LOGGER,
    limits: DEFAULT_TRANSPORT_LIMITS,
    dial: (_address, onConnected) => {
      const socket = new FakeSocket(clock, onConnected);
      dials.push(socket);
      return socket as unknown as Socket;
    },
    protocolRange: () => ({ min: 2, max: 2 }),
    previousReleaseWire: false,
    softwareVersion: "test",
    reportUnreachable: () => undefined,
    reportSnapshot: () => undefined,
  });
  return { connection, dials };
}

const heartbeat = message({ type: MessageType.Heartbeat, from: 1, to: 2, term: 1 });

/** Connects the first dial after `latencyMs`, then loses the connection; returns the next dial. */
async function connectOnceThenLose(
  clock: ManualClock,
  connection: PeerConnection,
  dials: FakeSocket[],
  latencyMs: number,
): Promise<FakeSocket> {
  connection.enqueue(heartbeat);
  expect(dials).toHaveLength(1);
  await clock.advance(latencyMs);
  dials[0]!.accept();
  expect(connection.connected).toBe(true);
  dials[0]!.destroy();
  // The backoff after a connection that had succeeded is at most the base delay.
  for (let waited = 0; dials.length < 2 && waited < 1000; waited++) await clock.advance(1);
  expect(dials).toHaveLength(2);
  return dials[1]!;
}

describe("peer link connect timeout", () => {
  it("abandons a dial after 100 ms once the link's connects took a few ms (a SYN lost at a heal)", async () => {
    const clock = new ManualClock();
    const { connection, dials } = link(clock);
    const socket = await connectOnceThenLose(clock, connection, dials, 2);

    await clock.advance(DEFAULT_TRANSPORT_LIMITS.connectTimeoutMs);

    expect(socket.destroyedAtMs).toBeDefined();
    expect(socket.destroyedAtMs! - socket.dialledAtMs).toBe(MIN_CONNECT_TIMEOUT_MS);
    // And the link dialled again right after (its backoff), so a healed path is used at once.
    expect(dials.length).toBeGreaterThanOrEqual(3);
    connection.close();
  });

  it("keeps the configured timeout for a link whose connects are slow (a WAN peer)", async () => {
    const clock = new ManualClock();
    const { connection, dials } = link(clock);
    const socket = await connectOnceThenLose(clock, connection, dials, 300);

    await clock.advance(DEFAULT_TRANSPORT_LIMITS.connectTimeoutMs - 10);
    expect(socket.destroyedAtMs).toBeUndefined();
    socket.accept();

    expect(connection.connected).toBe(true);
    connection.close();
  });

  it("uses the configured timeout before any connect succeeded", async () => {
    const clock = new ManualClock();
    const { connection, dials } = link(clock);
    connection.enqueue(heartbeat);

    await clock.advance(DEFAULT_TRANSPORT_LIMITS.connectTimeoutMs - 1);
    expect(dials[0]!.destroyedAtMs).toBeUndefined();
    await clock.advance(1);

    expect(dials[0]!.destroyedAtMs).toBe(DEFAULT_TRANSPORT_LIMITS.connectTimeoutMs);
    connection.close();
  });

  it("keeps a dial whose connect completed in the same turn as its timeout (a loaded node's late timers)", async () => {
    const clock = new ManualClock();
    const { connection, dials } = link(clock);
    const socket = await connectOnceThenLose(clock, connection, dials, 2);
    // The connect completes at the very time the timeout is due, after it in the turn: as when
    // a stalled event loop runs its timers before the poll phase that brings the connect.
    const dueInMs = MIN_CONNECT_TIMEOUT_MS - (clock.now() - socket.dialledAtMs);
    clock.setTimer(dueInMs, () => socket.accept());

    await clock.advance(dueInMs);

    expect(socket.destroyedAtMs).toBeUndefined();
    expect(connection.connected).toBe(true);
    connection.close();
  });
});
