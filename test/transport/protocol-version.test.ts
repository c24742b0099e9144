/**
 * Rolling upgrades at the transport: a receiver reads every protocol version from
 * MIN_PROTOCOL_VERSION to PROTOCOL_VERSION and refuses the rest with a message that says what to
 * do, so nodes of two adjacent releases talk during an upgrade.
 */
import { createConnection, type Socket } from "node:net";
import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import {
  encodeFrame,
  frame,
  isSupportedProtocolVersion,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  toWireMessage,
} from "../../src/transport/codec.js";
import {
  HelloSchema,
  MessageBatchSchema,
} from "../../src/transport/gen/blixard/raft/v1/raft_pb.js";
import { closeAll, numbered, startEndpoint, startMesh, waitFor, type Endpoint } from "./helpers.js";
import { negotiateProtocolVersion } from "../../src/transport/protocol-version.js";

/** Node 1 as the previous release (protocol 1 only), node 2 as this one; each knows the other. */
async function mixedPair(): Promise<[Endpoint, Endpoint]> {
  const old = await startEndpoint(1, {
    protocol: { maxVersion: 1 },
    limits: { refusalLogIntervalMs: 0 },
  });
  const current = await startEndpoint(2, {
    protocol: { softwareVersion: "9.9.9" },
    limits: { refusalLogIntervalMs: 0 },
  });
  open.push(old, current);
  old.transport.addPeer(2, current.transport.address);
  current.transport.addPeer(1, old.transport.address);
  return [old, current];
}

const open: Endpoint[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await closeAll(open.splice(0));
});

async function speak(port: number, version: number, commit: number): Promise<Socket> {
  const socket = createConnection({ host: "127.0.0.1", port });
  sockets.push(socket);
  socket.on("error", () => undefined);
  socket.resume();
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const hello = create(HelloSchema, {
    clusterId: "test-cluster",
    fromId: 1n,
    toId: 2n,
    protocolVersion: version,
  });
  const batch = create(MessageBatchSchema, {
    clusterId: "test-cluster",
    from: 1n,
    to: 2n,
    messages: [toWireMessage(numbered(1, 2, commit))],
  });
  socket.write(encodeFrame(frame({ case: "hello", value: hello })));
  socket.write(encodeFrame(frame({ case: "batch", value: batch })));
  return socket;
}

describe("protocol versions", () => {
  it("the supported range is MIN..current and holds the current version", () => {
    expect(MIN_PROTOCOL_VERSION).toBeLessThanOrEqual(PROTOCOL_VERSION);
    expect(isSupportedProtocolVersion(PROTOCOL_VERSION)).toBe(true);
    expect(isSupportedProtocolVersion(MIN_PROTOCOL_VERSION)).toBe(true);
    expect(isSupportedProtocolVersion(MIN_PROTOCOL_VERSION - 1)).toBe(false);
    expect(isSupportedProtocolVersion(PROTOCOL_VERSION + 1)).toBe(false);
  });

  it("accepts every version in the range and refuses a newer and an older one", async () => {
    const endpoints = await startMesh([1, 2], { limits: { refusalLogIntervalMs: 0 } });
    open.push(...endpoints.values());
    const b = endpoints.get(2)!;
    const port = b.transport.address.port;
    for (let version = MIN_PROTOCOL_VERSION; version <= PROTOCOL_VERSION; version++) {
      await speak(port, version, 100 + version);
      await waitFor(() => b.received.some((m) => m.commit === 100 + version), `version ${version}`);
    }
    await speak(port, PROTOCOL_VERSION + 1, 900);
    await waitFor(
      () => b.logger.warned(`protocol version ${PROTOCOL_VERSION + 1} is outside`),
      "the refusal of a newer version",
    );
    await speak(port, MIN_PROTOCOL_VERSION - 1, 901);
    await waitFor(
      () => b.logger.warned(`protocol version ${MIN_PROTOCOL_VERSION - 1} is outside`),
      "the refusal of an older version",
    );
    expect(b.received.some((m) => m.commit >= 900)).toBe(false);
  });

  it("a link speaks the lower of both newest versions, and nothing when the ranges do not meet", () => {
    expect(negotiateProtocolVersion({ min: 1, max: 2 }, { min: 1, max: 1 })).toBe(1);
    expect(negotiateProtocolVersion({ min: 1, max: 2 }, { min: 1, max: 3 })).toBe(2);
    expect(negotiateProtocolVersion({ min: 2, max: 2 }, { min: 1, max: 1 })).toBeUndefined();
    expect(negotiateProtocolVersion({ min: 1, max: 2 }, { min: 3, max: 4 })).toBeUndefined();
  });

  it("this release and the previous one talk both ways on protocol 1; each knows what the other speaks", async () => {
    const [old, current] = await mixedPair();
    old.transport.send([numbered(1, 2, 11)]);
    current.transport.send([numbered(2, 1, 12)]);
    await waitFor(() => current.received.some((m) => m.commit === 11), "old → current");
    await waitFor(() => old.received.some((m) => m.commit === 12), "current → old");
    expect(current.transport.peerProtocols().get(1)).toEqual({
      protocolVersion: 1,
      maxProtocolVersion: 1,
    });
    expect(old.transport.peerProtocols().get(2)).toMatchObject({ protocolVersion: 1 });
    // Between two nodes of this release the link speaks 2, and says its release.
    const [a, b] = [
      ...(await startMesh([3, 4], { protocol: { softwareVersion: "1.2.3" } })).values(),
    ];
    open.push(a!, b!);
    a!.transport.send([numbered(3, 4, 13)]);
    await waitFor(() => b!.received.some((m) => m.commit === 13), "3 → 4");
    expect(b!.transport.peerProtocols().get(3)).toEqual({
      protocolVersion: PROTOCOL_VERSION,
      maxProtocolVersion: PROTOCOL_VERSION,
      softwareVersion: "1.2.3",
    });
    expect(a!.transport.peerProtocols().get(4)).toEqual({
      protocolVersion: PROTOCOL_VERSION,
      maxProtocolVersion: PROTOCOL_VERSION,
      softwareVersion: "1.2.3",
    });
  });

  it("once the cluster moved to 2, a node of the previous release is refused both ways and told to upgrade", async () => {
    const [old, current] = await mixedPair();
    old.transport.send([numbered(1, 2, 21)]);
    await waitFor(() => current.received.some((m) => m.commit === 21), "the link on protocol 1");
    current.transport.requireProtocolVersion(2);
    expect(current.transport.protocolRange()).toEqual({ min: 2, max: PROTOCOL_VERSION });
    // Its open link is closed; its redial is refused with what to do.
    old.transport.send([numbered(1, 2, 22)]);
    await waitFor(
      () => old.logger.warned("upgrade it to a release that speaks 2 before it rejoins"),
      "the refusal the old node reads",
    );
    // This node's own hello now offers 2 at the oldest, which the previous release refuses.
    current.transport.send([numbered(2, 1, 23)]);
    await waitFor(
      () => old.logger.warned("protocol version 2 is outside 1"),
      "the previous release refusing protocol 2",
    );
    expect(current.received.some((m) => m.commit === 22)).toBe(false);
    expect(old.received.some((m) => m.commit === 23)).toBe(false);
    expect(() => old.transport.requireProtocolVersion(2)).toThrow(/newer than this node/);
  });
});
