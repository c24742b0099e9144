/**
 * The receiving side of one peer link: checks the hello (cluster id, addressee, a known sender,
 * protocol version and, over TLS, that the sender's certificate names the node it claims to
 * be), then every batch and snapshot chunk against it (every message field: see
 * validate-message.ts), reassembles snapshots, and hands raft messages to the runtime. A peer
 * that breaks a rule is refused with a rate-limited log line and disconnected; other peers are
 * unaffected. Memory is bounded by what the peer actually sent, never by what it announced:
 * before the hello a frame is at most `maxHelloFrameSizeBytes`. Nothing a peer sends can throw
 * out of the socket's data handler. On a link of protocol 3 or later the connection also carries
 * this node's copies of control messages back to the peer ({@link InboundConnection.writeFrame},
 * duplex-path.ts). Private to src/transport.
 */
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { create } from "@bufbuild/protobuf";
import type { Clock, TimerHandle } from "../common/clock.js";
import { InvalidArgumentError, TooLargeError } from "../common/errors.js";
import { type Message, MessageType, type NodeId } from "../raft/types.js";
import { peerNodeIdFromCertificate } from "../security/peer-identity.js";
import { BATCH_FRAME_TAG, decodeBatchFrame } from "./batch-codec.js";
import {
  type BatchLink,
  checkBatch,
  checkMessage,
  InvalidMessage,
  ProtocolViolation,
} from "./batch-check.js";
import {
  decodeFrame,
  encodeFrame,
  frame,
  fromWireMessage,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
} from "./codec.js";
import { FrameReader } from "./frame-reader.js";
import {
  type Hello,
  HelloAckSchema,
  RefusalSchema,
  type SnapshotChunk,
} from "./gen/blixard/raft/v1/raft_pb.js";
import type { TransportLimits } from "./limits.js";
import type { Logger } from "../common/logger.js";
import type { RefusalLog } from "./refusal-log.js";
import { datagramKeyOf } from "./datagram-channel.js";
import type { ReverseWriter } from "./duplex-path.js";
import {
  DUPLEX_PROTOCOL_VERSION,
  formatRange,
  helloRange,
  negotiateProtocolVersion,
  type PeerProtocol,
  type ProtocolRange,
} from "./protocol-version.js";

/** What an {@link InboundConnection} needs from its transport. */
export interface InboundConnectionOptions {
  readonly selfId: NodeId;
  readonly clusterId: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Where refusals are counted and (rate-limited) logged. */
  readonly refusals: RefusalLog;
  readonly limits: TransportLimits;
  readonly isKnownPeer: (id: NodeId) => boolean;
  /** True for a peer this node saw removed from the cluster: it is refused with {@link REMOVED_REFUSAL}. */
  readonly isRemovedPeer?: (id: NodeId) => boolean;
  /**
   * Hold the hello to the peer's certificate: its node identity name must be the id claimed.
   * Set when the transport runs with TLS (the certificate is then verified by the CA).
   */
  readonly requireCertificateIdentity: boolean;
  /**
   * The protocol versions this node speaks now (the oldest rises once a cluster moved on).
   * Default: MIN_PROTOCOL_VERSION..PROTOCOL_VERSION.
   */
  readonly protocolRange?: () => ProtocolRange;
  /**
   * Answer as the release before protocol 2 did (test switch, see `TcpTransportOptions.protocol`):
   * a hello is accepted only if its `protocol_version` is in the range, the answer has no version.
   */
  readonly previousReleaseWire?: boolean;
  /** This node's software release, sent in the hello's answer (default: none). */
  readonly softwareVersion?: string;
  /** Called once the hello is accepted. */
  readonly onAccepted: (connection: InboundConnection) => void;
  readonly onMessages: (messages: readonly Message[]) => void;
  readonly onClosed: (connection: InboundConnection) => void;
}

/**
 * A snapshot being reassembled. Chunks are kept as received (views into their frames) and
 * joined once at the end, so memory follows the bytes that arrived, not the announced size.
 */
interface Assembly {
  readonly id: bigint;
  readonly message: Message;
  readonly totalBytes: number;
  readonly chunks: Uint8Array[];
  filledBytes: number;
}

/**
 * The start of the refusal reason sent to a node this node saw removed from the cluster; the
 * removed node stops when it reads it (see `PeerConnection`). Part of the protocol: keep it.
 */
export const REMOVED_REFUSAL = "removed from the cluster:";

/** How long a refused socket may linger to deliver its refusal before it is destroyed. */
const REFUSAL_LINGER_MS = 1000;

/** One accepted socket from a peer. */
export class InboundConnection implements ReverseWriter {
  /** The peer, once its hello is accepted. */
  peerId: NodeId | undefined;
  /** The peer's protocol as its hello said, once accepted. */
  peerProtocol: PeerProtocol | undefined;
  private readonly reader: FrameReader;
  private handshakeTimer: TimerHandle | undefined;
  private assembly: Assembly | undefined;
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly options: InboundConnectionOptions,
  ) {
    // Until the hello is accepted the peer is a stranger: a hello-sized frame at most.
    this.reader = new FrameReader(options.limits.maxHelloFrameSizeBytes);
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

  /** True once the hello is accepted on a link of protocol 3 or later: frames may go back. */
  get carriesBack(): boolean {
    return !this.closed && (this.peerProtocol?.protocolVersion ?? 0) >= DUPLEX_PROTOCOL_VERSION;
  }

  /**
   * Writes `frame` (this node's copy of control messages, see duplex-path.ts) back to the peer.
   * Never queues behind unsent bytes: false, and nothing written, when the socket still holds
   * some (the copy would only be late), when the link speaks a protocol before 3 (the peer would
   * close the connection on it) or when the connection is closing. Throws nothing.
   */
  writeFrame(frame: Uint8Array): boolean {
    if (!this.carriesBack || this.socket.destroyed || this.socket.writableLength > 0) return false;
    this.socket.write(frame);
    return true;
  }

  /** The datagram key of this connection's TLS session (datagram-channel.ts); none without TLS. */
  datagramKey(): Buffer | undefined {
    return datagramKeyOf(this.socket);
  }

  /** Closes the connection (the peer was removed, or the transport is closing). */
  close(): void {
    this.socket.destroy();
  }

  /** True until the hello is accepted. */
  get pending(): boolean {
    return this.peerId === undefined && !this.closed;
  }

  /** Bytes held for an incomplete frame (for tests and metrics). */
  get bufferedBytes(): number {
    return this.reader.allocatedBytes + (this.assembly?.filledBytes ?? 0);
  }

  private get remote(): string {
    return `${this.remoteHost}:${this.socket.remotePort ?? "?"}`;
  }

  private get remoteHost(): string {
    return this.socket.remoteAddress ?? "?";
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.reader.pushEach(chunk, (body) => {
        this.onFrame(body);
        return !this.closed;
      });
    } catch (error) {
      if (error instanceof InvalidMessage) {
        this.refuse(error.message, "message");
        return;
      }
      if (
        error instanceof ProtocolViolation ||
        error instanceof TooLargeError ||
        error instanceof InvalidArgumentError
      ) {
        this.refuse(error.message);
        return;
      }
      // A bug of ours, met on a peer's bytes: refuse the peer, never crash the node for it.
      this.refuse(`internal error on peer input: ${String(error)}`);
    }
  }

  private onFrame(body: Uint8Array): void {
    // Batches, the hot path, skip the generated decoder (see batch-codec.ts).
    if (this.peerId !== undefined && body[0] === BATCH_FRAME_TAG) {
      this.options.onMessages(
        checkBatch(decodeBatchFrame(body), this.link(this.peerId), this.options.limits),
      );
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
    const linkVersion = this.negotiate(hello, fromId);
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
    if (this.options.requireCertificateIdentity) this.checkIdentity(fromId);
    this.handshakeTimer?.cancel();
    this.handshakeTimer = undefined;
    this.peerId = fromId;
    const peerRange = helloRange(hello);
    this.peerProtocol = {
      protocolVersion: linkVersion,
      maxProtocolVersion: peerRange.max,
      ...(hello.softwareVersion === "" ? {} : { softwareVersion: hello.softwareVersion }),
    };
    this.reader.maxFrameSizeBytes = this.options.limits.maxFrameSizeBytes;
    const ack = create(
      HelloAckSchema,
      this.options.previousReleaseWire === true
        ? { nodeId: BigInt(selfId) }
        : {
            nodeId: BigInt(selfId),
            protocolVersion: linkVersion,
            maxProtocolVersion: this.protocolRange().max,
            softwareVersion: this.options.softwareVersion ?? "",
          },
    );
    this.socket.write(encodeFrame(frame({ case: "helloAck", value: ack })));
    this.options.logger.debug("accepted peer connection", { peer: fromId, remote: this.remote });
    this.options.onAccepted(this);
  }

  private protocolRange(): ProtocolRange {
    return this.options.protocolRange?.() ?? { min: MIN_PROTOCOL_VERSION, max: PROTOCOL_VERSION };
  }

  /**
   * The version the link will speak, or a refusal that says what to do. The release before
   * protocol 2 read only the hello's `protocol_version`; the previous-release wire does the same.
   */
  private negotiate(hello: Hello, fromId: number): number {
    const local = this.protocolRange();
    const peer = helloRange(hello);
    const previous = this.options.previousReleaseWire === true;
    const version = previous
      ? hello.protocolVersion >= local.min && hello.protocolVersion <= local.max
        ? hello.protocolVersion
        : undefined
      : negotiateProtocolVersion(local, peer);
    if (version !== undefined) return version;
    const offered = previous ? `${hello.protocolVersion}` : formatRange(peer);
    const advice =
      peer.max < local.min && local.min > MIN_PROTOCOL_VERSION
        ? `this cluster moved to protocol ${local.min} once every member spoke it; ` +
          `node ${fromId} runs an older release: upgrade it to a release that speaks ${local.min} before it rejoins`
        : "upgrade one release at a time";
    throw new ProtocolViolation(
      `protocol version ${offered} is outside ${formatRange(local)}: ${advice}`,
    );
  }

  /**
   * The certificate (verified against the CA by TLS) must name the node the hello claims:
   * otherwise any node of the cluster could speak as any other.
   */
  private checkIdentity(claimedId: NodeId): void {
    const certificate =
      this.socket instanceof TLSSocket ? this.socket.getPeerX509Certificate() : undefined;
    if (certificate === undefined) {
      throw new ProtocolViolation(`node ${claimedId} presented no certificate`);
    }
    const certifiedId = peerNodeIdFromCertificate(certificate, this.options.clusterId);
    if (certifiedId === undefined) {
      throw new ProtocolViolation(
        `the certificate names no node of cluster "${this.options.clusterId}" (hello claims node ${claimedId})`,
      );
    }
    if (certifiedId !== claimedId) {
      throw new ProtocolViolation(
        `hello claims node ${claimedId} but the certificate is node ${certifiedId}'s`,
      );
    }
  }

  /**
   * The link's batches are checked as every batch from a peer is (batch-check.ts); a message a
   * correct peer never sends drops the whole batch and closes the link (the peer is broken or
   * hostile; it redials, and each refusal is counted).
   */
  private link(peerId: NodeId): BatchLink {
    return { clusterId: this.options.clusterId, peerId, selfId: this.options.selfId };
  }

  /** Adds a chunk; returns the Snap message once the last chunk is in. */
  private addChunk(chunk: SnapshotChunk, peerId: NodeId): Message | undefined {
    const offset = Number(chunk.offset);
    if (offset === 0) {
      if (chunk.message === undefined) throw new ProtocolViolation("first chunk without a message");
      const m = checkMessage(
        fromWireMessage(chunk.message),
        this.link(peerId),
        this.options.limits,
      );
      if (m.type !== MessageType.Snap || m.snapshot === undefined) {
        throw new ProtocolViolation("first chunk carries no snapshot message");
      }
      const totalBytes = Number(chunk.totalSizeBytes);
      if (
        !Number.isSafeInteger(totalBytes) ||
        totalBytes > this.options.limits.maxSnapshotSizeBytes
      ) {
        throw new TooLargeError(
          `snapshot of ${totalBytes} bytes exceeds the limit of ${this.options.limits.maxSnapshotSizeBytes} bytes`,
        );
      }
      if (this.assembly !== undefined) {
        this.options.logger.warn("snapshot stream from peer restarted; dropping the partial one", {
          peer: peerId,
        });
      }
      // Nothing is allocated for the announced size: chunks are kept as they arrive.
      this.assembly = { id: chunk.snapshotId, message: m, totalBytes, chunks: [], filledBytes: 0 };
    }
    const assembly = this.assembly;
    if (assembly === undefined || assembly.id !== chunk.snapshotId) {
      throw new ProtocolViolation(`chunk of unknown snapshot stream ${chunk.snapshotId}`);
    }
    if (offset !== assembly.filledBytes || offset + chunk.data.length > assembly.totalBytes) {
      throw new ProtocolViolation(
        `chunk at offset ${offset} (${chunk.data.length} bytes) does not continue the stream at ${assembly.filledBytes} of ${assembly.totalBytes}`,
      );
    }
    if (chunk.data.length > 0) assembly.chunks.push(chunk.data);
    assembly.filledBytes += chunk.data.length;
    if (!chunk.last) return undefined;
    if (assembly.filledBytes !== assembly.totalBytes) {
      throw new ProtocolViolation(
        `snapshot ended at ${assembly.filledBytes} of ${assembly.totalBytes} bytes`,
      );
    }
    this.assembly = undefined;
    const data = join(assembly.chunks, assembly.totalBytes);
    const snapshot = assembly.message.snapshot!;
    this.options.logger.info("snapshot received from peer", {
      peer: peerId,
      index: snapshot.metadata.index,
      sizeBytes: data.length,
    });
    return { ...assembly.message, snapshot: { metadata: snapshot.metadata, data } };
  }

  /**
   * Refuses the peer: a counted, rate-limited log line, a refusal frame (during the handshake),
   * then close.
   */
  private refuse(reason: string, kind: "connection" | "message" = "connection"): void {
    if (this.closed) return;
    this.closed = true;
    this.assembly = undefined;
    this.options.refusals.refused(
      kind,
      this.remoteHost,
      kind === "message"
        ? "dropped invalid messages from peer; closing its connection"
        : "refused peer connection",
      { peer: this.peerId, remote: this.remote, reason },
    );
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

/** The chunks of a snapshot in one buffer of exactly `totalBytes`. */
function join(chunks: readonly Uint8Array[], totalBytes: number): Uint8Array {
  if (chunks.length === 1 && chunks[0]!.length === totalBytes) return chunks[0]!;
  const data = new Uint8Array(totalBytes);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.length;
  }
  return data;
}
