/**
 * The datagram path (`datagram-channel.ts`): copies of control messages as UDP datagrams,
 * tagged with a key both ends derive from their TLS connection, so that a vote or a heartbeat
 * gets through while both TCP connections of a pair wait out retransmission timeouts (issue
 * #17). What arrives by datagram is checked like a batch on a connection: forged, replayed,
 * malformed or unauthenticated datagrams never reach raft, and never throw.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { message, MessageType, type Message } from "../../src/raft/types.js";
import {
  DATAGRAM_HEADER_BYTES,
  DatagramKey,
  datagramBody,
  encodeDatagram,
  MalformedDatagram,
  MAX_DATAGRAM_BYTES,
  readDatagramHeader,
} from "../../src/transport/datagram-wire.js";
import { SystemClock } from "../../src/platform/clock.js";
import { DatagramChannel } from "../../src/transport/datagram-channel.js";
import { DEFAULT_TRANSPORT_LIMITS } from "../../src/transport/limits.js";
import { RefusalLog } from "../../src/transport/refusal-log.js";
import { issueCert, makeCa, nodeName } from "../fixtures/test-certs.js";
import {
  closeAll,
  numbered,
  rawBatchFrame,
  RecordingLogger,
  startEndpoint,
  waitFor,
  type Endpoint,
} from "./helpers.js";
import { startRelay, type Relay } from "./relay.js";

const dir = mkdtempSync(join(tmpdir(), "blixard-datagram-"));
const ca = makeCa(dir, "cluster-ca");
const CLUSTER = "test-cluster";
const certs = new Map(
  [1, 2].map((id) => [id, issueCert(dir, ca, `node${id}`, [nodeName(CLUSTER, id)])]),
);
function tlsOf(id: number): { cert: string; key: string; ca: string } {
  const c = certs.get(id)!;
  return { cert: c.cert, key: c.key, ca: ca.cert };
}

const open: Endpoint[] = [];
const relays: Relay[] = [];
const udpSockets: UdpSocket[] = [];
afterEach(async () => {
  for (const r of relays.splice(0)) r.close();
  for (const s of udpSockets.splice(0)) s.close();
  await closeAll(open.splice(0));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** No liveness reset or redial during a test, and every refusal logged. */
const QUIET_LIMITS = { silenceLimitMs: 60_000, drainTimeoutMs: 60_000, refusalLogIntervalMs: 0 };

function vote(from: number, to: number): Message {
  return message({ type: MessageType.Vote, from, to, term: 2, logTerm: 1, index: 1 });
}
function voteResp(from: number, to: number): Message {
  return message({ type: MessageType.VoteResp, from, to, term: 2 });
}
function count(e: Endpoint, type: MessageType): number {
  return e.received.filter((m) => m.type === type).length;
}

/** A UDP socket to send `node` hand-made datagrams. */
async function sender(): Promise<(datagram: Uint8Array, to: Endpoint) => void> {
  const udp = createSocket("udp4");
  udpSockets.push(udp);
  await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", () => resolve()));
  return (datagram, to) => udp.send(datagram, to.transport.address.port, "127.0.0.1");
}

/**
 * Two nodes whose peer addresses go through relays, both connections up (so each side holds
 * both keys), then both TCP relays stalled: only datagrams get through.
 */
async function pairWithStalledTcp(secure: boolean): Promise<{
  a: Endpoint;
  b: Endpoint;
  toA: Relay;
  toB: Relay;
}> {
  const options = (id: number): Parameters<typeof startEndpoint>[1] => ({
    limits: QUIET_LIMITS,
    ...(secure ? { tls: tlsOf(id) } : {}),
  });
  const a = await startEndpoint(1, options(1));
  const b = await startEndpoint(2, options(2));
  open.push(a, b);
  const toA = await startRelay(a.transport.address.port, { udp: true });
  const toB = await startRelay(b.transport.address.port, { udp: true });
  relays.push(toA, toB);
  a.transport.addPeer(2, `127.0.0.1:${toB.port}`);
  b.transport.addPeer(1, `127.0.0.1:${toA.port}`);
  a.transport.send([numbered(1, 2, 1)]);
  b.transport.send([numbered(2, 1, 1)]);
  await waitFor(() => a.received.length === 1 && b.received.length === 1, "both connections up");
  toA.stall();
  toB.stall();
  return { a, b, toA, toB };
}

describe("peer datagrams", () => {
  it("carry a vote and its answer while both TCP connections of the pair are stalled (TLS keys)", async () => {
    const { a, b, toB } = await pairWithStalledTcp(true);
    a.transport.send([vote(1, 2)]);
    await waitFor(() => count(b, MessageType.Vote) === 1, "the vote, by datagram");
    b.transport.send([voteResp(2, 1)]);
    await waitFor(() => count(a, MessageType.VoteResp) === 1, "the answer, by datagram");

    // Written twice, taken once: the second copy is discarded by its sequence number.
    const sent = toB.datagrams.length;
    expect(sent).toBe(2);
    expect(toB.datagrams[0]!.equals(toB.datagrams[1]!)).toBe(true);
    await waitFor(() => b.transport.datagramStats().datagramsRepeated === 1, "the second copy");
    expect(b.transport.datagramStats()).toMatchObject({
      datagramsReceived: 1,
      datagramsUnauthenticated: 0,
      datagramsRefused: 0,
    });
    expect(a.transport.stats().get(2)!.datagram.messagesSent).toBe(1);
    expect(b.transport.stats().get(1)!.messagesReceivedByDatagram).toBe(1);
    // Tagged with a key of the pair's TLS connections: neither plain text nor the key travels.
    const header = readDatagramHeader(toB.datagrams[0]!);
    expect(header.key).toBe(DatagramKey.SenderDialled);
    expect(header.senderId).toBe(1);

    // A replay later is refused too: raft sees the vote once.
    const replay = await sender();
    replay(toB.datagrams[0]!, b);
    await waitFor(() => b.transport.datagramStats().datagramsRepeated === 2, "the replay");
    expect(count(b, MessageType.Vote)).toBe(1);
  });

  it("keep their TLS keys after the connections close: votes still get through while neither can be redialled", async () => {
    const { a, b, toA, toB } = await pairWithStalledTcp(true);
    toA.cutTcp();
    toB.cutTcp();
    await waitFor(
      () => !a.transport.isConnected(2) && !b.transport.isConnected(1),
      "both connections closed",
    );
    a.transport.send([vote(1, 2)]);
    await waitFor(() => count(b, MessageType.Vote) === 1, "the vote, by datagram");
    b.transport.send([voteResp(2, 1)]);
    await waitFor(() => count(a, MessageType.VoteResp) === 1, "the answer, by datagram");
    expect(a.transport.isConnected(2)).toBe(false);
    expect(b.transport.datagramStats().datagramsUnauthenticated).toBe(0);
  });

  it("never carries appends: they wait for the connection", async () => {
    const { a, b, toB } = await pairWithStalledTcp(true);
    a.transport.send([numbered(1, 2, 2), vote(1, 2)]);
    await waitFor(() => count(b, MessageType.Vote) === 1, "the vote of the same batch");
    // The append of the same batch is still in the stalled connection, and in no datagram.
    expect(b.received.filter((m) => m.commit === 2)).toHaveLength(0);
    expect(toB.datagrams.length).toBeGreaterThan(0);
    expect(b.transport.stats().get(1)!.messagesReceivedByDatagram).toBe(1);
  });

  it("refuses forged, unauthenticated and malformed datagrams without delivering or throwing", async () => {
    const { a, b } = await pairWithStalledTcp(true);
    const send = await sender();
    const forged = (key: DatagramKey, sequence: number): Buffer =>
      encodeDatagram(
        { key, senderId: 1, epoch: 1, sequence },
        rawBatchFrame(1, 2, [vote(1, 2)]).subarray(4),
        Buffer.alloc(32, 7),
      )!;
    send(forged(DatagramKey.SenderDialled, 1_000), b); // a key the attacker made up
    send(forged(DatagramKey.ReceiverDialled, 1_000), b);
    send(forged(DatagramKey.None, 1), b); // plain text to a TLS node
    send(Buffer.from("not a datagram at all"), b);
    send(Buffer.alloc(0), b);
    await waitFor(
      () =>
        b.transport.datagramStats().datagramsUnauthenticated === 2 &&
        b.transport.datagramStats().datagramsRefused >= 2,
      "the forged and unauthenticated datagrams",
    );
    // An empty datagram may never reach the handler (the kernel delivers it, Node may not).
    expect(b.transport.datagramStats().datagramsRefused).toBeLessThanOrEqual(3);
    expect(count(b, MessageType.Vote)).toBe(0);
    expect(b.logger.warned("refused a peer datagram")).toBe(true);

    // The real path still works afterwards (the forgeries moved no sequence number).
    a.transport.send([vote(1, 2)]);
    await waitFor(() => count(b, MessageType.Vote) === 1, "a genuine vote");
  });

  it("without TLS: delivers plain datagrams, refuses an append in one, and takes a restarted sender's new sequence", async () => {
    const { a, b } = await pairWithStalledTcp(false);
    a.transport.send([vote(1, 2)]);
    await waitFor(() => count(b, MessageType.Vote) === 1, "the vote");

    const send = await sender();
    const plain = (epoch: number, sequence: number, messages: readonly Message[]): Buffer =>
      encodeDatagram(
        { key: DatagramKey.None, senderId: 1, epoch, sequence },
        rawBatchFrame(1, 2, messages).subarray(4),
        undefined,
      )!;
    // An append by datagram: a correct peer never sends one.
    send(plain(777, 1_000, [numbered(1, 2, 9)]), b);
    await waitFor(() => b.transport.datagramStats().datagramsRefused === 1, "the append");
    expect(b.received.filter((m) => m.commit === 9)).toHaveLength(0);
    // A sender that restarted (another epoch) starts its sequence again at 1.
    send(plain(12345, 1, [vote(1, 2)]), b);
    await waitFor(() => count(b, MessageType.Vote) === 2, "the restarted sender's vote");
  });

  it("runs on TCP alone, with one warning, when the UDP port is taken", async () => {
    const taken = createSocket("udp4");
    udpSockets.push(taken);
    await new Promise<void>((resolve) => taken.bind(0, "127.0.0.1", () => resolve()));
    const logger = new RecordingLogger();
    const channel = new DatagramChannel({
      selfId: 1,
      clusterId: CLUSTER,
      secure: false,
      epoch: 1,
      bounds: DEFAULT_TRANSPORT_LIMITS,
      logger,
      refusals: new RefusalLog(new SystemClock(), logger, 0),
      peerAddress: () => ({ host: "127.0.0.1", port: 1 }),
      onMessages: () => undefined,
    });
    await channel.open("127.0.0.1", taken.address().port);
    expect(channel.bound).toBe(false);
    expect(channel.writerFor(2)).toBeUndefined();
    expect(logger.lines.filter((l) => l.level === "warn")).toHaveLength(1);
    expect(logger.warned("peer datagrams off")).toBe(true);
    channel.close();
  });

  it("can be turned off: nothing is bound, sent or read", async () => {
    const a = await startEndpoint(1, { datagrams: false, limits: QUIET_LIMITS });
    open.push(a);
    expect(a.transport.datagramsOpen).toBe(false);
    const b = await startEndpoint(2, { limits: QUIET_LIMITS });
    open.push(b);
    expect(b.transport.datagramsOpen).toBe(true);
  });
});

describe("the datagram envelope", () => {
  const key = Buffer.alloc(32, 1);
  const body = rawBatchFrame(1, 2, [vote(1, 2)]).subarray(4);
  const header = { key: DatagramKey.SenderDialled, senderId: 1, epoch: 9, sequence: 2 ** 40 + 3 };

  it("round-trips, and refuses a changed byte or another key", () => {
    const datagram = encodeDatagram(header, body, key)!;
    expect(readDatagramHeader(datagram)).toEqual(header);
    expect(datagramBody(datagram, header, key)?.equals(body)).toBe(true);
    expect(datagramBody(datagram, header, Buffer.alloc(32, 2))).toBeUndefined();
    // (Byte 3, the key's kind, is the channel's to check: a TLS node refuses plain text.)
    for (const at of [5, 9, 13, DATAGRAM_HEADER_BYTES + 2, datagram.length - 1]) {
      const changed = Buffer.from(datagram);
      changed[at] = changed[at]! ^ 1;
      let got: Buffer | undefined;
      try {
        got = datagramBody(changed, readDatagramHeader(changed), key);
      } catch (error) {
        expect(error).toBeInstanceOf(MalformedDatagram);
        continue;
      }
      // A header byte changed is a different header: under the same key the tag then fails.
      expect(got).toBeUndefined();
    }
  });

  it("refuses what is not a datagram of this format", () => {
    const datagram = encodeDatagram(header, body, key)!;
    const cases: Buffer[] = [
      Buffer.alloc(0),
      datagram.subarray(0, DATAGRAM_HEADER_BYTES),
      Buffer.concat([Buffer.from([0, 0]), datagram.subarray(2)]),
      Buffer.concat([datagram.subarray(0, 2), Buffer.from([2]), datagram.subarray(3)]),
      Buffer.concat([datagram.subarray(0, 3), Buffer.from([3]), datagram.subarray(4)]),
    ];
    const past53 = Buffer.from(datagram);
    past53.writeUInt32LE(0x20_0000, 16);
    cases.push(past53);
    for (const bad of cases) expect(() => readDatagramHeader(bad)).toThrow(MalformedDatagram);
  });

  it("makes no datagram that would be fragmented, or that needs a key it was not given", () => {
    expect(encodeDatagram(header, Buffer.alloc(MAX_DATAGRAM_BYTES), key)).toBeUndefined();
    expect(encodeDatagram(header, body, undefined)).toBeUndefined();
    expect(encodeDatagram({ ...header, senderId: 2 ** 32 }, body, key)).toBeUndefined();
  });
});
