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
import { closeAll, numbered, startMesh, waitFor, type Endpoint } from "./helpers.js";

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
});
