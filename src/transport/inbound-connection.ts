/**
 * The receiving side of one peer link: checks the hello (cluster id, addressee, a known sender,
 * protocol version), then every batch and snapshot chunk against it, reassembles snapshots, and
 * hands raft messages to the runtime. A peer that breaks a rule is refused with a log line and
 * disconnected; other peers are unaffected. Private to src/transport.
 */
import type { Socket } from "node:net";
import { create } from "@bufbuild/protobuf";
import type { Clock, TimerHandle } from "../common/clock.js";
import { InvalidArgumentError, TooLargeError } from "../common/errors.js";
import { type Message, MessageType, type NodeId } from "../raft/types.js";
import { BATCH_FRAME_TAG, decodeBatchFrame, type DecodedBatch } from "./batch-codec.js";
import { decodeFrame, encodeFrame, frame, fromWireMessage, PROTOCOL_VERSION } from "./codec.js";
import { FrameReader } from "./frame-reader.js";
import {
  type Hello,
  HelloAckSchema,
  RefusalSchema,
  type SnapshotChunk,
} from "./gen/blixard/raft/v1/raft_pb.js";
import type { TransportLimits } from "./limits.js";
import type { TransportLogger } from "./logger.js";

/** What an {@link InboundConnection} needs from its transport. */
export interface InboundConnectionOptions {
  readonly selfId: NodeId;
  readonly clusterId: string;
  readonly clock: Clock;
  readonly logger: TransportLogger;
  readonly limits: TransportLimits;
  readonly isKnownPeer: (id: NodeId) => boolean;
  /** True for a peer this node saw removed from the cluster: it is refused with {@link REMOVED_REFUSAL}. */
  readonly isRemovedPeer?: (id: NodeId) => boolean;
  /** Called once the hello is accepted. */
  readonly onAccepted: (connection: InboundConnection) => void;
  readonly onMessages: (messages: readonly Message[]) => void;
  readonly onClosed: (connection: InboundConnection) => void;
}

/** A snapshot being reassembled. */
interface Assembly {
  readonly id: bigint;
  readonly message: Message;
  readonly data: Uint8Array;
  filledBytes: number;
}

/**
 * The start of the refusal reason sent to a node this node saw removed from the cluster; the
 * removed node stops when it reads it (see `PeerConnection`). Part of the protocol: keep it.
 */
export const REMOVED_REFUSAL = "removed from the cluster:";

/** How long a refused socket may linger to deliver its refusal before it is destroyed. */
const REFUSAL_LINGER_MS = 1000;

/** A rule broken by the peer: the connection is refused or closed with this reason. */
class ProtocolViolation extends Error {}

/** One accepted socket from a peer. */
export class InboundConnection {
  /** The peer, once its hello is accepted. */
  peerId: NodeId | undefined;
  private readonly reader: FrameReader;
  private handshakeTimer: TimerHandle | undefined;
  private assembly: Assembly | undefined;
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly options: InboundConnectionOptions,
  ) {
    this.reader = new FrameReader(options.limits.maxFrameSizeBytes);
    socket.setNoDelay(true);
    this.handshakeTimer = options.clock.setTimer(options.limits.handshakeTimeoutMs, () => {
      this.refuse("no hello within the handshake timeout");
    });
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (error) => {
      options.logger.debug("inbound peer connection error", {
        peer: this.peerId,
        remote: this.remote,
        error: error.message,
      });
    });
    socket.on("close", () => {
      this.closed = true;
      this.handshakeTimer?.cancel();
      this.assembly = undefined;
      options.onClosed(this);
    });
  }

  /** Closes the connection (the peer was removed, or the transport is closing). */
  close(): void {
    this.socket.destroy();
  }

  private get remote(): string {
    return `${this.socket.remoteAddress ?? "?"}:${this.socket.remotePort ?? "?"}`;
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    try {
      for (const body of this.reader.push(chunk)) {
        this.onFrame(body);
        if (this.closed) return;
      }
    } catch (error) {
      if (
        error instanceof ProtocolViolation ||
        error instanceof TooLargeError ||
        error instanceof InvalidArgumentError
      ) {
        this.refuse(error.message);
        return;
      }
      throw error;
    }
  }

  private onFrame(body: Uint8Array): void {
    // Batches, the hot path, skip the generated decoder (see batch-codec.ts).
    if (this.peerId !== undefined && body[0] === BATCH_FRAME_TAG) {
      this.options.onMessages(this.checkBatch(decodeBatchFrame(body), this.peerId));
      return;
    }
    const f = decodeFrame(body);
    if (this.peerId === undefined) {
      if (f.kind.case !== "hello")
        throw new ProtocolViolation(`expected hello, got ${f.kind.case}`);
      this.accept(f.kind.value);
      return;
    }
    switch (f.kind.case) {
      case "snapshotChunk": {
        const m = this.addChunk(f.kind.value, this.peerId);
        if (m !== undefined) this.options.onMessages([m]);
        return;
      }
      default:
        throw new ProtocolViolation(`unexpected ${f.kind.case ?? "empty"} frame after the hello`);
    }
  }

  private accept(hello: Hello): void {
    const { clusterId, selfId, isKnownPeer } = this.options;
    const fromId = Number(hello.fromId);
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      throw new ProtocolViolation(
        `protocol version ${hello.protocolVersion} is not ${PROTOCOL_VERSION}`,
      );
    }
    if (hello.clusterId !== clusterId) {
      throw new ProtocolViolation(`cluster id "${hello.clusterId}" is not "${clusterId}"`);
    }
    if (Number(hello.toId) !== selfId) {
      throw new ProtocolViolation(`hello is for node ${hello.toId}, this is node ${selfId}`);
    }
    if (this.options.isRemovedPeer?.(fromId) === true) {
      throw new ProtocolViolation(
        `${REMOVED_REFUSAL} node ${fromId} is not a member any more; stop it`,
      );
    }
    if (fromId === selfId || !Number.isSafeInteger(fromId) || !isKnownPeer(fromId)) {
      throw new ProtocolViolation(`node ${hello.fromId} is not a known peer`);
    }
    this.handshakeTimer?.cancel();
    this.handshakeTimer = undefined;
    this.peerId = fromId;
    const ack = create(HelloAckSchema, { nodeId: BigInt(selfId) });
    this.socket.write(encodeFrame(frame({ case: "helloAck", value: ack })));
    this.options.logger.debug("accepted peer connection", { peer: fromId, remote: this.remote });
    this.options.onAccepted(this);
  }

  private checkBatch(batch: DecodedBatch, peerId: NodeId): Message[] {
    if (batch.clusterId !== this.options.clusterId) {
      throw new ProtocolViolation(`batch for cluster "${batch.clusterId}"`);
    }
    if (batch.from !== peerId || batch.to !== this.options.selfId) {
      throw new ProtocolViolation(`batch from ${batch.from} to ${batch.to} on this link`);
    }
    for (const m of batch.messages) this.checkMessage(m, peerId);
    return batch.messages;
  }

  private checkMessage(m: Message, peerId: NodeId): Message {
    if (m.from !== peerId || m.to !== this.options.selfId) {
      throw new ProtocolViolation(`message from ${m.from} to ${m.to} on this link`);
    }
    return m;
  }

  /** Adds a chunk; returns the Snap message once the last chunk is in. */
  private addChunk(chunk: SnapshotChunk, peerId: NodeId): Message | undefined {
    const offset = Number(chunk.offset);
    if (offset === 0) {
      if (chunk.message === undefined) throw new ProtocolViolation("first chunk without a message");
      const m = this.checkMessage(fromWireMessage(chunk.message), peerId);
      if (m.type !== MessageType.Snap || m.snapshot === undefined) {
        throw new ProtocolViolation("first chunk carries no snapshot message");
      }
      const totalBytes = Number(chunk.totalSizeBytes);
      if (totalBytes > this.options.limits.maxSnapshotSizeBytes) {
        throw new TooLargeError(
          `snapshot of ${totalBytes} bytes exceeds the limit of ${this.options.limits.maxSnapshotSizeBytes} bytes`,
        );
      }
      if (this.assembly !== undefined) {
        this.options.logger.warn("snapshot stream from peer restarted; dropping the partial one", {
          peer: peerId,
        });
      }
      this.assembly = {
        id: chunk.snapshotId,
        message: m,
        data: new Uint8Array(totalBytes),
        filledBytes: 0,
      };
    }
    const assembly = this.assembly;
    if (assembly === undefined || assembly.id !== chunk.snapshotId) {
      throw new ProtocolViolation(`chunk of unknown snapshot stream ${chunk.snapshotId}`);
    }
    if (offset !== assembly.filledBytes || offset + chunk.data.length > assembly.data.length) {
      throw new ProtocolViolation(
        `chunk at offset ${offset} (${chunk.data.length} bytes) does not continue the stream at ${assembly.filledBytes} of ${assembly.data.length}`,
      );
    }
    assembly.data.set(chunk.data, offset);
    assembly.filledBytes += chunk.data.length;
    if (!chunk.last) return undefined;
    if (assembly.filledBytes !== assembly.data.length) {
      throw new ProtocolViolation(
        `snapshot ended at ${assembly.filledBytes} of ${assembly.data.length} bytes`,
      );
    }
    this.assembly = undefined;
    const snapshot = assembly.message.snapshot!;
    this.options.logger.info("snapshot received from peer", {
      peer: peerId,
      index: snapshot.metadata.index,
      sizeBytes: assembly.data.length,
    });
    return { ...assembly.message, snapshot: { metadata: snapshot.metadata, data: assembly.data } };
  }

  /** Refuses the peer: a log line, a refusal frame (during the handshake), then close. */
  private refuse(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.options.logger.warn("refused peer connection", {
      peer: this.peerId,
      remote: this.remote,
      reason,
    });
    if (this.peerId === undefined) {
      const refusal = create(RefusalSchema, { reason });
      // end() flushes the refusal before closing; destroy() after it bounds a peer that never reads.
      this.socket.end(encodeFrame(frame({ case: "refusal", value: refusal })));
      this.handshakeTimer?.cancel();
      this.handshakeTimer = this.options.clock.setTimer(REFUSAL_LINGER_MS, () =>
        this.socket.destroy(),
      );
    } else {
      this.socket.destroy();
    }
  }
}
