/**
 * Peer protocol 3 (`duplex-path.ts`): votes, pre-votes, heartbeats and their answers also travel
 * back on the connection the peer dialled, so an answer does not wait for its own connection
 * (stuck in a retransmission timeout under packet loss, issue #17). Only on links that negotiated
 * 3, so a node of the release before (protocol 2) is never sent a frame it would close the
 * connection for; and what arrives on the dialling side passes the accepting side's checks.
 */
import { createServer, type Server, type Socket } from "node:net";
import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { message, MessageType, type Message } from "../../src/raft/types.js";
import { encodeFrame, frame } from "../../src/transport/codec.js";
import { FrameReader } from "../../src/transport/frame-reader.js";
import { HelloAckSchema } from "../../src/transport/gen/blixard/raft/v1/raft_pb.js";
import { DUPLEX_PROTOCOL_VERSION } from "../../src/transport/protocol-version.js";
import {
  closeAll,
  numbered,
  rawBatchFrame,
  startEndpoint,
  waitFor,
  type Endpoint,
} from "./helpers.js";
import { startRelay, type Relay } from "./relay.js";

const open: Endpoint[] = [];
const servers: Server[] = [];
const sockets: Socket[] = [];
const relays: Relay[] = [];
afterEach(async () => {
  for (const r of relays.splice(0)) r.close();
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
  await closeAll(open.splice(0));
});

/** Long enough that no liveness reset or redial happens during a test. */
const QUIET_LIMITS = { silenceLimitMs: 60_000, drainTimeoutMs: 60_000, refusalLogIntervalMs: 0 };

/**
 * These tests count what each TCP connection carries: no third copy by datagram
 * (datagram.test.ts has those).
 */
async function endpoint(id: number, maxVersion?: number): Promise<Endpoint> {
  const e = await startEndpoint(id, {
    datagrams: false,
    limits: QUIET_LIMITS,
    ...(maxVersion === undefined ? {} : { protocol: { maxVersion } }),
  });
  open.push(e);
  return e;
}

function vote(from: number, to: number, type: MessageType = MessageType.Vote): Message {
  return message({ type, from, to, term: 2, logTerm: 1, index: 1 });
}

function voteResp(from: number, to: number): Message {
  return message({ type: MessageType.VoteResp, from, to, term: 2 });
}

describe("control messages on both connections of a pair (protocol 3)", () => {
  it("a vote's answer arrives on the candidate's own connection while the voter's connection to it is stalled", async () => {
    const candidate = await endpoint(1);
    const voter = await endpoint(2);
    const relay = await startRelay(candidate.transport.address.port);
    relays.push(relay);
    candidate.transport.addPeer(2, voter.transport.address);
    voter.transport.addPeer(1, `127.0.0.1:${relay.port}`);
    // Both connections up: the voter's goes through the relay.
    candidate.transport.send([numbered(1, 2, 1)]);
    voter.transport.send([numbered(2, 1, 1)]);
    await waitFor(
      () => candidate.received.length === 1 && voter.received.length === 1,
      "both connections up",
    );
    relay.stall();

    candidate.transport.send([vote(1, 2)]);
    await waitFor(() => voter.received.some((m) => m.type === MessageType.Vote), "the request");
    voter.transport.send([voteResp(2, 1)]);
    await waitFor(
      () => candidate.received.some((m) => m.type === MessageType.VoteResp),
      "the answer, on the candidate's connection",
    );
    expect(voter.transport.stats().get(1)!.reverse.messagesSent).toBe(1);
    expect(candidate.transport.stats().get(2)!.messagesReceivedBack).toBe(1);
    // The original is still in the stalled connection: the copy is what arrived.
    expect(voter.transport.isConnected(1)).toBe(true);
  });

  it("answers on the peer's connection while its own connection to the peer cannot be made", async () => {
    const leader = await endpoint(1);
    const follower = await endpoint(2);
    // The follower's address for the leader accepts nothing: its own link can only fail.
    const dead = await endpoint(9);
    const deadPort = dead.transport.address.port;
    await dead.transport.close();
    leader.transport.addPeer(2, follower.transport.address);
    follower.transport.addPeer(1, `127.0.0.1:${deadPort}`);
    const heartbeat = message({ type: MessageType.Heartbeat, from: 1, to: 2, term: 3 });
    leader.transport.send([heartbeat]);
    await waitFor(() => follower.received.length === 1, "the heartbeat");
    follower.transport.send([
      message({ type: MessageType.HeartbeatResp, from: 2, to: 1, term: 3 }),
    ]);
    await waitFor(
      () => leader.received.some((m) => m.type === MessageType.HeartbeatResp),
      "the heartbeat's answer",
    );
    expect(follower.transport.isConnected(1)).toBe(false);
    expect(follower.transport.stats().get(1)!.reverse.messagesSent).toBe(1);
  });

  it("writes a frame of control messages once, the same bytes on both connections", async () => {
    const a = await endpoint(1);
    const b = await endpoint(2);
    a.transport.addPeer(2, b.transport.address);
    b.transport.addPeer(1, a.transport.address);
    b.transport.send([numbered(2, 1, 1)]);
    a.transport.send([numbered(1, 2, 1)]);
    await waitFor(() => a.received.length === 1 && b.received.length === 1, "both connections up");
    const before = structuredClone(a.transport.stats().get(2)!);
    a.transport.send([vote(1, 2, MessageType.PreVote)]);
    await waitFor(
      () => b.received.filter((m) => m.type === MessageType.PreVote).length === 2,
      "both copies",
    );
    const after = a.transport.stats().get(2)!;
    expect(after.framesSent - before.framesSent).toBe(1);
    expect(after.reverse.framesSent - before.reverse.framesSent).toBe(1);
    expect(after.reverse.bytesSent - before.reverse.bytesSent).toBe(
      after.bytesSent - before.bytesSent,
    );
    // Counted once as sent, once as sent back; and on the other side once each way.
    expect(after.messagesSent - before.messagesSent).toBe(1);
    expect(b.transport.receivedStats().get(1)!.messagesReceived).toBe(2);
    expect(b.transport.stats().get(1)!.messagesReceivedBack).toBe(1);
    // Appends are never duplicated: one copy, in order on the dialled connection.
    a.transport.send([numbered(1, 2, 2), vote(1, 2)]);
    await waitFor(() => b.received.filter((m) => m.commit === 2).length === 1, "the append");
    await waitFor(
      () => b.received.filter((m) => m.type === MessageType.Vote).length === 2,
      "the vote sent in the same frame, and its copy",
    );
    expect(b.received.filter((m) => m.type === MessageType.App && m.commit === 2)).toHaveLength(1);
  });
});

describe("heartbeats and their answers take both connections only while answers are late", () => {
  /** Heartbeats are copied after 500 ms without an answer; copies of answers never expire here. */
  const DOUBT_LIMITS = { ...QUIET_LIMITS, duplexAfterSilenceMs: 500, duplexHoldMs: 60_000 };

  function heartbeat(): Message {
    return message({ type: MessageType.Heartbeat, from: 1, to: 2, term: 2 });
  }
  function heartbeatResp(): Message {
    return message({ type: MessageType.HeartbeatResp, from: 2, to: 1, term: 2 });
  }
  function count(e: Endpoint, type: MessageType): number {
    return e.received.filter((m) => m.type === type).length;
  }

  it("copies nothing while answers are prompt; a heartbeat after a silence and then its answers go both ways", async () => {
    const leader = await startEndpoint(1, { datagrams: false, limits: DOUBT_LIMITS });
    const follower = await startEndpoint(2, { datagrams: false, limits: DOUBT_LIMITS });
    open.push(leader, follower);
    leader.transport.addPeer(2, follower.transport.address);
    follower.transport.addPeer(1, leader.transport.address);
    follower.transport.send([numbered(2, 1, 1)]);
    leader.transport.send([numbered(1, 2, 1)]);
    await waitFor(
      () => leader.received.length === 1 && follower.received.length === 1,
      "both connections up",
    );

    // A healthy exchange: each heartbeat is answered at once, and nothing is copied.
    for (let round = 1; round <= 5; round++) {
      leader.transport.send([heartbeat()]);
      await waitFor(() => count(follower, MessageType.Heartbeat) === round, "the heartbeat");
      follower.transport.send([heartbeatResp()]);
      await waitFor(() => count(leader, MessageType.HeartbeatResp) === round, "the answer");
    }
    expect(leader.transport.stats().get(2)!.reverse.messagesSent).toBe(0);
    expect(follower.transport.stats().get(1)!.reverse.messagesSent).toBe(0);

    // The follower stops answering: past the limit, the next heartbeat goes both ways.
    const lastAnswerAt = Date.now();
    await waitFor(() => Date.now() - lastAnswerAt > 600, "the silence to pass", 2_000);
    leader.transport.send([heartbeat()]);
    await waitFor(() => count(follower, MessageType.Heartbeat) === 7, "the heartbeat and its copy");
    expect(leader.transport.stats().get(2)!.reverse.messagesSent).toBe(1);
    expect(follower.transport.stats().get(1)!.messagesReceivedBack).toBe(1);

    // The leader is copying its heartbeats, so the follower copies its answers.
    follower.transport.send([heartbeatResp()]);
    await waitFor(() => count(leader, MessageType.HeartbeatResp) === 7, "the answer and its copy");
    expect(follower.transport.stats().get(1)!.reverse.messagesSent).toBe(1);
    expect(leader.transport.stats().get(2)!.messagesReceivedBack).toBe(1);
  });
});

describe("mixed versions: protocol 3 next to the release of protocol 2", () => {
  for (const [name, oldDials] of [
    ["the old node dials", true],
    ["the new node dials", false],
  ] as const) {
    it(`sends nothing back on a link of protocol 2, and every message arrives once (${name})`, async () => {
      const current = await endpoint(1);
      const previous = await endpoint(2, 2);
      const [dialler, acceptor] = oldDials ? [previous, current] : [current, previous];
      const diallerId = oldDials ? 2 : 1;
      const acceptorId = oldDials ? 1 : 2;
      dialler.transport.addPeer(acceptorId, acceptor.transport.address);
      acceptor.transport.addPeer(diallerId, dialler.transport.address);
      dialler.transport.send([vote(diallerId, acceptorId)]);
      await waitFor(() => acceptor.received.length === 1, "the request");
      acceptor.transport.send([voteResp(acceptorId, diallerId)]);
      await waitFor(() => dialler.received.length === 1, "the answer");
      // A marker after the answer, on the same connection: anything sent back would have come.
      acceptor.transport.send([numbered(acceptorId, diallerId, 7)]);
      await waitFor(() => dialler.received.length === 2, "the marker");
      for (const e of [current, previous]) {
        expect(e.transport.peerProtocols().values().next().value).toMatchObject({
          protocolVersion: 2,
        });
        for (const stats of e.transport.stats().values()) {
          expect(stats.reverse).toEqual({
            messagesSent: 0,
            messagesDropped: 0,
            framesSent: 0,
            bytesSent: 0,
          });
          expect(stats.messagesReceivedBack).toBe(0);
          expect(stats.connects).toBe(1);
        }
        expect(e.transport.refusalStats()).toMatchObject({
          connectionsRefused: 0,
          messagesRejected: 0,
        });
      }
      expect(dialler.received.map((m) => m.type)).toEqual([MessageType.VoteResp, MessageType.App]);
      expect(acceptor.received.map((m) => m.type)).toEqual([MessageType.Vote]);
    });
  }
});

/**
 * A fake peer that accepts one connection, answers the hello with `ackVersion` and then writes
 * `frames`: what a hostile or broken peer could send back on a connection this node dialled.
 */
async function fakePeer(
  ackVersion: number,
  frames: readonly Uint8Array[],
): Promise<{ port: number; closed: Promise<void> }> {
  let onClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => (onClosed = resolve));
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => undefined);
    socket.on("close", onClosed);
    const reader = new FrameReader(1 << 20);
    socket.on("data", (chunk: Buffer) => {
      if (reader.push(chunk).length === 0) return;
      const ack = create(HelloAckSchema, {
        nodeId: 2n,
        protocolVersion: ackVersion,
        maxProtocolVersion: ackVersion,
      });
      socket.write(encodeFrame(frame({ case: "helloAck", value: ack })));
      for (const f of frames) socket.write(f);
      socket.removeAllListeners("data");
      socket.resume();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  return { port: address.port, closed };
}

describe("what a peer sends back on the dialling side is checked as on the accepting side", () => {
  async function dialFake(
    ackVersion: number,
    frames: readonly Uint8Array[],
  ): Promise<{ node: Endpoint; closed: Promise<void> }> {
    const node = await endpoint(1);
    const peer = await fakePeer(ackVersion, frames);
    node.transport.addPeer(2, `127.0.0.1:${peer.port}`);
    node.transport.send([heartbeatTo2()]);
    return { node, closed: peer.closed };
  }

  it("delivers a valid vote answer sent back on a link of protocol 3", async () => {
    const { node } = await dialFake(DUPLEX_PROTOCOL_VERSION, [
      rawBatchFrame(2, 1, [voteResp(2, 1)]),
    ]);
    await waitFor(() => node.received.length === 1, "the answer");
    expect(node.received[0]).toMatchObject({ type: MessageType.VoteResp, from: 2 });
    expect(node.transport.stats().get(2)!.messagesReceivedBack).toBe(1);
  });

  it("does not count copies sent back as hearing the peer: a connection whose own direction is silent is still reset", async () => {
    const node = await startEndpoint(1, {
      datagrams: false,
      limits: { ...QUIET_LIMITS, silenceLimitMs: 200, reconnectBaseDelayMs: 60_000 },
    });
    open.push(node);
    // The peer answers only on this node's connection, and never on one of its own.
    const peer = await fakePeer(DUPLEX_PROTOCOL_VERSION, [rawBatchFrame(2, 1, [voteResp(2, 1)])]);
    node.transport.addPeer(2, `127.0.0.1:${peer.port}`);
    node.transport.send([heartbeatTo2()]);
    await waitFor(() => node.received.length === 1, "the copy");
    await waitFor(() => node.transport.stats().get(2)!.livenessResets === 1, "the silence reset");
  });

  const refused: [string, number, Uint8Array, "message" | "connection"][] = [
    ["a batch on a link of protocol 2", 2, rawBatchFrame(2, 1, [voteResp(2, 1)]), "connection"],
    [
      "an append (not a control message)",
      DUPLEX_PROTOCOL_VERSION,
      rawBatchFrame(2, 1, [message({ type: MessageType.App, from: 2, to: 1, term: 2 })]),
      "connection",
    ],
    [
      "a batch that claims another sender",
      DUPLEX_PROTOCOL_VERSION,
      rawBatchFrame(3, 1, [voteResp(3, 1)]),
      "connection",
    ],
    [
      "a message with term 0",
      DUPLEX_PROTOCOL_VERSION,
      rawBatchFrame(2, 1, [message({ type: MessageType.VoteResp, from: 2, to: 1, term: 0 })]),
      "message",
    ],
    [
      "a local message type (Hup would make this node campaign)",
      DUPLEX_PROTOCOL_VERSION,
      rawBatchFrame(2, 1, [message({ type: MessageType.Hup, from: 2, to: 1, term: 2 })]),
      "message",
    ],
    [
      "a frame longer than the frame limit",
      DUPLEX_PROTOCOL_VERSION,
      oversizedHeader(),
      "connection",
    ],
  ];
  for (const [what, ackVersion, bad, kind] of refused) {
    it(`closes the connection on ${what}, counts it, and delivers nothing`, async () => {
      const { node, closed } = await dialFake(ackVersion, [
        bad,
        rawBatchFrame(2, 1, [voteResp(2, 1)]),
      ]);
      await closed;
      const stats = node.transport.refusalStats();
      await waitFor(
        () => (kind === "message" ? stats.messagesRejected : stats.connectionsRefused) === 1,
        "the refusal counted",
      );
      expect(node.received).toEqual([]);
    });
  }
});

function heartbeatTo2(): Message {
  return message({ type: MessageType.Heartbeat, from: 1, to: 2, term: 2 });
}

/** A frame header announcing more than the default 16 MiB frame limit, and no body. */
function oversizedHeader(): Uint8Array {
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, 64 * 1024 * 1024);
  return header;
}
