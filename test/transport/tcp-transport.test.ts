import { createConnection, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { SeededRandom } from "../../src/common/random.js";
import { SystemClock } from "../../src/platform/clock.js";
import { message, MessageType, type Message } from "../../src/raft/types.js";
import { encodeFrame, frame, PROTOCOL_VERSION } from "../../src/transport/codec.js";
import { HelloSchema } from "../../src/transport/gen/blixard/raft/v1/raft_pb.js";
import { TcpTransport } from "../../src/transport/tcp-transport.js";
import {
  closeAll,
  numbered,
  rawBatchFrame,
  startEndpoint,
  startMesh,
  waitFor,
  type Endpoint,
} from "./helpers.js";

const open: Endpoint[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await closeAll(open.splice(0));
});

async function mesh(...args: Parameters<typeof startMesh>): Promise<Map<number, Endpoint>> {
  const endpoints = await startMesh(...args);
  open.push(...endpoints.values());
  return endpoints;
}

/** A raw client socket that speaks the frame protocol by hand (for misbehaving peers). */
async function rawClient(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = createConnection({ host: "127.0.0.1", port });
  sockets.push(socket);
  socket.on("error", () => undefined);
  // Read (and discard) what the transport answers, so its close reaches us.
  socket.resume();
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return { socket, closed };
}

function hello(fromId: number, toId: number, clusterId = "test-cluster"): Uint8Array {
  const value = create(HelloSchema, {
    clusterId,
    fromId: BigInt(fromId),
    toId: BigInt(toId),
    protocolVersion: PROTOCOL_VERSION,
  });
  return encodeFrame(frame({ case: "hello", value }));
}

describe("TcpTransport", () => {
  it("delivers messages in order between 3 transports, each way", async () => {
    const endpoints = await mesh([1, 2, 3]);
    const perLink = 200;
    for (let seq = 1; seq <= perLink; seq++) {
      for (const from of [1, 2, 3]) {
        const out = [1, 2, 3].filter((to) => to !== from).map((to) => numbered(from, to, seq));
        endpoints.get(from)!.transport.send(out);
      }
      // Spread the sends over turns so that several connections and frames are involved.
      if (seq % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(
      () => [...endpoints.values()].every((e) => e.received.length === 2 * perLink),
      "every message delivered",
    );
    for (const [id, endpoint] of endpoints) {
      for (const from of [1, 2, 3].filter((other) => other !== id)) {
        const sequence = endpoint.received.filter((m) => m.from === from).map((m) => m.commit);
        expect(sequence).toEqual(Array.from({ length: perLink }, (_, i) => i + 1));
      }
      expect(endpoint.received.every((m) => m.to === id)).toBe(true);
    }
  });

  it("batches every message sent in one turn into one frame", async () => {
    const endpoints = await mesh([1, 2]);
    const a = endpoints.get(1)!;
    const b = endpoints.get(2)!;
    a.transport.send([numbered(1, 2, 0)]);
    await waitFor(() => a.transport.isConnected(2) && b.received.length === 1, "connection up");
    const framesBefore = a.transport.stats().get(2)!.framesSent;
    const batchesBefore = b.batches.length;
    for (let seq = 1; seq <= 100; seq++) a.transport.send([numbered(1, 2, seq)]);
    await waitFor(() => b.received.length === 101, "100 messages delivered");
    expect(a.transport.stats().get(2)!.framesSent - framesBefore).toBe(1);
    expect(b.batches.length - batchesBefore).toBe(1);
    expect(b.batches.at(-1)!.length).toBe(100);
  });

  it("drops past the bounded queue and reports the peer unreachable", async () => {
    // Peer 2's address accepts nothing: the queue can only fill.
    const a = await startEndpoint(1, {
      limits: { maxQueuedMessages: 10, maxQueuedBytes: 1 << 20 },
    });
    open.push(a);
    const silent = await startEndpoint(9);
    const port = silent.transport.address.port;
    await silent.transport.close();
    a.transport.addPeer(2, `127.0.0.1:${port}`);
    a.transport.send(Array.from({ length: 1000 }, (_, i) => numbered(1, 2, i)));
    const stats = a.transport.stats().get(2)!;
    expect(stats.messagesDropped).toBe(990);
    expect(a.unreachable).toContain(2);
    // After the failed connection attempt the queue is emptied, not kept forever.
    await waitFor(() => stats.connectFailures >= 1, "the connection attempt to fail");
    expect(stats.messagesDropped).toBe(1000);
  });

  it("bounds the queue by bytes as well as messages", async () => {
    const a = await startEndpoint(1, { limits: { maxQueuedBytes: 10_000 } });
    open.push(a);
    a.transport.addPeer(2, "127.0.0.1:1");
    const big = message({
      type: MessageType.App,
      from: 1,
      to: 2,
      term: 1,
      entries: [{ term: 1, index: 1, type: 0, data: new Uint8Array(4000) }],
    });
    a.transport.send([big, big, big, big]);
    expect(a.transport.stats().get(2)!.messagesDropped).toBe(2);
  });

  it("reconnects with backoff after the peer comes back", async () => {
    const endpoints = await mesh([1, 2], { limits: { reconnectMaxDelayMs: 200 } });
    const a = endpoints.get(1)!;
    const b = endpoints.get(2)!;
    a.transport.send([numbered(1, 2, 1)]);
    await waitFor(() => b.received.length === 1, "first message");
    const port = b.transport.address.port;
    await b.transport.close();
    // Keep sending while the peer is down: these are dropped, and reconnects back off.
    const downDeadline = Date.now() + 400;
    while (Date.now() < downDeadline) {
      a.transport.send([numbered(1, 2, 2)]);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(a.transport.stats().get(2)!.connectFailures).toBeGreaterThanOrEqual(2);
    expect(a.transport.isConnected(2)).toBe(false);
    const b2 = await startEndpoint(2, { listen: { host: "127.0.0.1", port } });
    open.push(b2);
    b2.transport.addPeer(1, a.transport.address);
    await waitFor(() => {
      a.transport.send([numbered(1, 2, 3)]);
      return b2.received.some((m) => m.commit === 3);
    }, "delivery after the peer restarted");
    expect(a.transport.isConnected(2)).toBe(true);
  });

  it("refuses another cluster's node and keeps serving its own peers", async () => {
    const endpoints = await mesh([1, 2]);
    const b = endpoints.get(2)!;
    const stranger = await startEndpoint(1, { clusterId: "other-cluster" });
    open.push(stranger);
    stranger.transport.addPeer(2, b.transport.address);
    stranger.transport.send([numbered(1, 2, 666)]);
    await waitFor(() => b.logger.warned('cluster id "other-cluster"'), "the refusal log line");
    await waitFor(() => stranger.logger.warned("peer refused the connection"), "the sender told");
    endpoints.get(1)!.transport.send([numbered(1, 2, 1)]);
    await waitFor(() => b.received.some((m) => m.commit === 1), "the real peer served");
    expect(b.received.some((m) => m.commit === 666)).toBe(false);
  });

  it("refuses an unknown sender, a hello for another node and frames before the hello", async () => {
    // Every refusal logged (the default keeps one line per address per 10 s).
    const b = (await mesh([1, 2], { limits: { refusalLogIntervalMs: 0 } })).get(2)!;
    const port = b.transport.address.port;

    const unknown = await rawClient(port);
    unknown.socket.write(hello(7, 2));
    unknown.socket.write(rawBatchFrame(7, 2, [numbered(7, 2, 1)]));
    await unknown.closed;
    expect(b.logger.warned("node 7 is not a known peer")).toBe(true);

    const misaddressed = await rawClient(port);
    misaddressed.socket.write(hello(1, 3));
    await misaddressed.closed;
    expect(b.logger.warned("hello is for node 3")).toBe(true);

    const rude = await rawClient(port);
    rude.socket.write(rawBatchFrame(1, 2, [numbered(1, 2, 1)]));
    await rude.closed;
    expect(b.logger.warned("expected hello")).toBe(true);

    // A known peer that lies about the sender inside a batch is cut off too.
    const liar = await rawClient(port);
    liar.socket.write(hello(1, 2));
    liar.socket.write(rawBatchFrame(1, 2, [numbered(3, 2, 1)]));
    await liar.closed;
    expect(b.logger.warned("message from 3 to 2 on the link from 1 to 2")).toBe(true);
    expect(b.received).toEqual([]);
  });

  it("refuses an oversized frame and closes that connection only", async () => {
    const endpoints = await mesh([1, 2], {
      limits: { maxFrameSizeBytes: 64 * 1024, snapshotChunkSizeBytes: 16 * 1024 },
    });
    const b = endpoints.get(2)!;
    const raw = await rawClient(b.transport.address.port);
    raw.socket.write(hello(1, 2));
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 10 * 1024 * 1024);
    raw.socket.write(header);
    await raw.closed;
    expect(b.logger.warned("exceeds the limit of 65536 bytes")).toBe(true);
    endpoints.get(1)!.transport.send([numbered(1, 2, 5)]);
    await waitFor(() => b.received.some((m) => m.commit === 5), "the peer still served");
  });

  it("drops a message larger than the frame limit on the sending side", async () => {
    const endpoints = await mesh([1, 2], {
      limits: { maxFrameSizeBytes: 64 * 1024, snapshotChunkSizeBytes: 16 * 1024 },
    });
    const a = endpoints.get(1)!;
    const b = endpoints.get(2)!;
    const huge = message({
      type: MessageType.App,
      from: 1,
      to: 2,
      term: 1,
      entries: [{ term: 1, index: 1, type: 0, data: new Uint8Array(100 * 1024) }],
    });
    a.transport.send([huge, numbered(1, 2, 8)]);
    await waitFor(() => b.received.some((m) => m.commit === 8), "the small message");
    expect(b.received.some((m) => m.entries.length > 0)).toBe(false);
    expect(a.logger.warned("larger than the frame limit")).toBe(true);
    expect(a.unreachable).toContain(2);
  });

  it("streams a 10 MiB snapshot in chunks, interleaved with messages, intact", async () => {
    // Node 2 never answers here (a raft follower answers the heartbeats sent between chunks), so
    // the silence limit is set past the test's length.
    const endpoints = await mesh([1, 2], { limits: { silenceLimitMs: 60_000 } });
    const a = endpoints.get(1)!;
    const b = endpoints.get(2)!;
    const data = new Uint8Array(10 * 1024 * 1024);
    // A pattern that catches reordered, shifted or truncated chunks.
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    const snap = message({
      type: MessageType.Snap,
      from: 1,
      to: 2,
      term: 3,
      snapshot: {
        metadata: {
          index: 500,
          term: 3,
          confState: {
            voters: [1, 2, 3],
            learners: [4],
            votersOutgoing: [],
            learnersNext: [],
            autoLeave: false,
          },
        },
        data,
      },
    });
    a.transport.send([numbered(1, 2, 1), snap, numbered(1, 2, 2)]);
    await waitFor(
      () => b.received.some((m) => m.type === MessageType.Snap),
      "the snapshot",
      10_000,
    );
    const got = b.received.find((m) => m.type === MessageType.Snap)!;
    expect(got.snapshot!.metadata).toEqual(snap.snapshot!.metadata);
    expect(got.snapshot!.data.length).toBe(data.length);
    expect(Buffer.compare(Buffer.from(got.snapshot!.data), Buffer.from(data))).toBe(0);
    expect({ ...got, snapshot: undefined }).toEqual({ ...snap, snapshot: undefined });
    // The heartbeat sent after the snapshot did not wait for all of it.
    const order = b.received.map((m) => m.type);
    expect(order.indexOf(MessageType.Heartbeat, 1)).toBeLessThan(order.indexOf(MessageType.Snap));
    expect(a.transport.stats().get(2)!.framesSent).toBeGreaterThanOrEqual(10);
  });

  it("reports each snapshot's outcome once: finish after the stream, failure for a second one or a broken link", async () => {
    const endpoints = await mesh([1, 2], { limits: { silenceLimitMs: 60_000 } });
    const a = endpoints.get(1)!;
    const b = endpoints.get(2)!;
    const snapOf = (index: number, sizeBytes: number): Message =>
      message({
        type: MessageType.Snap,
        from: 1,
        to: 2,
        term: 3,
        snapshot: {
          metadata: {
            index,
            term: 3,
            confState: {
              voters: [1, 2],
              learners: [],
              votersOutgoing: [],
              learnersNext: [],
              autoLeave: false,
            },
          },
          data: new Uint8Array(sizeBytes),
        },
      });
    a.transport.send([snapOf(10, 4 * 1024 * 1024)]);
    // Reported asynchronously, never inside send.
    expect(a.snapshotOutcomes).toEqual([]);
    a.transport.send([snapOf(11, 1024)]);
    await waitFor(() => a.snapshotOutcomes.length === 2, "both outcomes", 10_000);
    // The second was refused while the first streamed; the first finished.
    expect(a.snapshotOutcomes).toEqual([
      { peer: 2, outcome: "failure" },
      { peer: 2, outcome: "finish" },
    ]);
    await waitFor(() => b.received.some((m) => m.type === MessageType.Snap), "the snapshot");
    expect(b.received.filter((m) => m.type === MessageType.Snap).length).toBe(1);
    expect(b.received.find((m) => m.type === MessageType.Snap)!.snapshot!.metadata.index).toBe(10);

    // A link that breaks mid-stream reports failure.
    a.snapshotOutcomes.length = 0;
    a.transport.send([snapOf(12, 64 * 1024 * 1024)]);
    await waitFor(() => a.transport.stats().get(2)!.framesSent > 8, "streaming started");
    await b.transport.close();
    await waitFor(() => a.snapshotOutcomes.length === 1, "the failure", 10_000);
    expect(a.snapshotOutcomes).toEqual([{ peer: 2, outcome: "failure" }]);

    // A snapshot for an unknown peer fails too.
    a.transport.send([{ ...snapOf(13, 16), to: 9 }]);
    await waitFor(() => a.snapshotOutcomes.length === 2, "the unknown peer's failure");
    expect(a.snapshotOutcomes[1]).toEqual({ peer: 9, outcome: "failure" });
  });

  it("forgets a removed peer and refuses it afterwards", async () => {
    const endpoints = await mesh([1, 2]);
    const a = endpoints.get(1)!;
    const b = endpoints.get(2)!;
    a.transport.send([numbered(1, 2, 1)]);
    await waitFor(() => b.received.length === 1, "first message");
    b.transport.removePeer(1);
    a.transport.send([numbered(1, 2, 2)]);
    await waitFor(() => b.logger.warned("node 1 is not a known peer"), "the refusal after removal");
    expect(b.received.length).toBe(1);
    b.transport.send([numbered(2, 1, 1)]);
    expect(b.unreachable).toContain(1);
  });

  it("validates its options", () => {
    const base = {
      clusterId: "c",
      listen: { host: "127.0.0.1", port: 0 },
      clock: new SystemClock(),
      random: new SeededRandom(1),
    };
    expect(() => new TcpTransport({ ...base, nodeId: 0 })).toThrow(/node id/);
    expect(() => new TcpTransport({ ...base, nodeId: 1, clusterId: "" })).toThrow(/cluster id/);
    expect(
      () => new TcpTransport({ ...base, nodeId: 1, peers: new Map([[2, "nonsense"]]) }),
    ).toThrow(/peer address/);
    expect(
      () => new TcpTransport({ ...base, nodeId: 1, limits: { maxQueuedMessages: 0 } }),
    ).toThrow(/maxQueuedMessages/);
    const t = new TcpTransport({
      ...base,
      nodeId: 1,
      peers: new Map([[2, new URL("blixard://[::1]:7000")]]),
    });
    expect(t.peers().get(2)).toEqual({ host: "::1", port: 7000 });
  });
});
