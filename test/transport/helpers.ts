import { create } from "@bufbuild/protobuf";
import { SeededRandom } from "../../src/common/random.js";
import { SystemClock } from "../../src/platform/clock.js";
import { message, MessageType, type Message, type NodeId } from "../../src/raft/types.js";
import { TcpTransport, type TcpTransportOptions } from "../../src/transport/tcp-transport.js";
import type { Logger } from "../../src/common/logger.js";
import type { SnapshotDelivery } from "../../src/transport/transport.js";
import { encodeFrame, frame, toWireMessage } from "../../src/transport/codec.js";
import { MessageBatchSchema } from "../../src/transport/gen/blixard/raft/v1/raft_pb.js";

/** Polls `condition` every few ms until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A logger that keeps every line, for asserting on refusals. */
export class RecordingLogger implements Logger {
  readonly lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  debug(message: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: "debug", message, ...(fields === undefined ? {} : { fields }) });
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: "info", message, ...(fields === undefined ? {} : { fields }) });
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: "warn", message, ...(fields === undefined ? {} : { fields }) });
  }
  /** True if some warn line contains `text` in its message or reason. */
  warned(text: string): boolean {
    return this.lines.some(
      (l) =>
        l.level === "warn" &&
        (l.message.includes(text) || String(l.fields?.["reason"] ?? "").includes(text)),
    );
  }
}

/** One transport under test with what it received and whom it found unreachable. */
export interface Endpoint {
  readonly transport: TcpTransport;
  readonly received: Message[];
  readonly batches: (readonly Message[])[];
  readonly unreachable: NodeId[];
  /** Snapshot outcomes reported for snapshots this endpoint sent, in order. */
  readonly snapshotOutcomes: { readonly peer: NodeId; readonly outcome: SnapshotDelivery }[];
  readonly logger: RecordingLogger;
}

/** Starts a transport on 127.0.0.1 port 0 that records what it receives. */
export async function startEndpoint(
  nodeId: NodeId,
  overrides: Partial<Omit<TcpTransportOptions, "nodeId" | "clock" | "random">> = {},
): Promise<Endpoint> {
  const logger = new RecordingLogger();
  const transport = new TcpTransport({
    nodeId,
    clusterId: "test-cluster",
    listen: { host: "127.0.0.1", port: 0 },
    clock: new SystemClock(),
    random: new SeededRandom(nodeId),
    logger,
    ...overrides,
  });
  const endpoint: Endpoint = {
    transport,
    received: [],
    batches: [],
    unreachable: [],
    snapshotOutcomes: [],
    logger,
  };
  transport.listen({
    onMessages: (messages) => {
      endpoint.batches.push(messages);
      endpoint.received.push(...messages);
    },
    onUnreachable: (peer) => endpoint.unreachable.push(peer),
    onSnapshotStatus: (peer, outcome) => endpoint.snapshotOutcomes.push({ peer, outcome }),
  });
  await transport.start();
  return endpoint;
}

/** Starts `ids.length` transports that all know each other. */
export async function startMesh(
  ids: readonly NodeId[],
  overrides: Partial<Omit<TcpTransportOptions, "nodeId" | "clock" | "random">> = {},
): Promise<Map<NodeId, Endpoint>> {
  const endpoints = new Map<NodeId, Endpoint>();
  for (const id of ids) endpoints.set(id, await startEndpoint(id, overrides));
  for (const [id, endpoint] of endpoints) {
    for (const [peerId, peer] of endpoints) {
      if (peerId !== id) endpoint.transport.addPeer(peerId, peer.transport.address);
    }
  }
  return endpoints;
}

/**
 * A message carrying `commit` as a sequence number. An empty append: it travels only on the
 * connection its sender dialled, so it arrives once and in order (control messages such as
 * heartbeats also go back on the peer's connection; see `duplex-path.ts`).
 */
export function numbered(from: NodeId, to: NodeId, sequence: number): Message {
  return message({ type: MessageType.App, from, to, term: 1, commit: sequence });
}

/** Closes every endpoint. */
export async function closeAll(endpoints: Iterable<Endpoint>): Promise<void> {
  await Promise.all([...endpoints].map((e) => e.transport.close()));
}

/**
 * A batch frame of cluster `test-cluster` encoded by the generated code, as a hand-written peer
 * (or a broken one: nothing in it is checked) would send it.
 */
export function rawBatchFrame(from: number, to: number, messages: readonly Message[]): Uint8Array {
  const value = create(MessageBatchSchema, {
    clusterId: "test-cluster",
    from: BigInt(from),
    to: BigInt(to),
    messages: messages.map((m) => toWireMessage(m)),
  });
  return encodeFrame(frame({ case: "batch", value }));
}
