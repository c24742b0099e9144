/**
 * The outbound side of one peer link: a bounded queue of raft messages, one long-lived
 * connection that carries them in batch frames, a snapshot stream interleaved with the batches,
 * and reconnection with backoff. A link that is silent or cannot drain is reset (see
 * link-liveness.ts); hearing from the peer cuts a reconnect backoff short. On a link of protocol
 * 3 or later the control messages also go back on the connection the peer dialled
 * (duplex-path.ts), and the peer's own copies arrive on this connection: they pass the same
 * checks as on the accepting side (batch-check.ts). Private to src/transport.
 */
import type { Socket } from "node:net";
import type { Clock, TimerHandle } from "../common/clock.js";
import type { Random } from "../common/random.js";
import { type Message, MessageType, type NodeId } from "../raft/types.js";
import { type PeerAddress, formatAddress } from "./address.js";
import { Backoff } from "./backoff.js";
import { BATCH_FRAME_TAG, decodeBatchFrame, encodeBatchFrame } from "./batch-codec.js";
import { checkBatch, InvalidMessage, ProtocolViolation } from "./batch-check.js";
import {
  isDuplexType,
  ReversePath,
  type ReversePathStats,
  type ReverseWriter,
} from "./duplex-path.js";
import { DuplexPolicy } from "./duplex-policy.js";
import { decodeFrame, encodeFrame, frame, FRAME_HEADER_BYTES, toWireMessage } from "./codec.js";
import {
  DUPLEX_PROTOCOL_VERSION,
  type PeerProtocol,
  type ProtocolRange,
} from "./protocol-version.js";
import { FrameReader } from "./frame-reader.js";
import { REMOVED_REFUSAL } from "./inbound-connection.js";
import { LinkLiveness } from "./link-liveness.js";
import { create } from "@bufbuild/protobuf";
import { HelloSchema, SnapshotChunkSchema } from "./gen/blixard/raft/v1/raft_pb.js";
import { ENTRY_OVERHEAD_BYTES, MESSAGE_OVERHEAD_BYTES, type TransportLimits } from "./limits.js";
import type { Logger } from "../common/logger.js";
import type { RefusalLog } from "./refusal-log.js";
import type { SnapshotDelivery } from "./transport.js";

/** Counters of one peer link, for metrics. */
export interface PeerStats {
  messagesSent: number;
  messagesDropped: number;
  framesSent: number;
  bytesSent: number;
  snapshotsSent: number;
  snapshotsAborted: number;
  connects: number;
  connectFailures: number;
  /** Connections closed because the peer was silent or the socket did not drain. */
  livenessResets: number;
  /**
   * The copies of control messages sent back on the connection the peer dialled (protocol 3):
   * counted apart, so `messagesSent` still counts each message once.
   */
  readonly reverse: ReversePathStats;
  /** Messages the peer sent back on this node's connection (its copies; see duplex-path.ts). */
  messagesReceivedBack: number;
  /** The copies of control messages sent to the peer as datagrams (datagram-channel.ts). */
  readonly datagram: ReversePathStats;
  /** Messages the peer sent this node as datagrams (its copies). */
  messagesReceivedByDatagram: number;
}

/** What a {@link PeerConnection} needs from its transport. */
export interface PeerConnectionOptions {
  readonly selfId: NodeId;
  readonly peerId: NodeId;
  readonly clusterId: string;
  readonly address: PeerAddress;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly limits: TransportLimits;
  /** Opens a socket (plain or TLS) to `address`; `onConnected` fires once it can carry bytes. */
  readonly dial: (address: PeerAddress, onConnected: () => void) => Socket;
  /** The protocol versions this node speaks now; the hello offers them. */
  readonly protocolRange: () => ProtocolRange;
  /** Say hello as the release before protocol 2 did (test switch): its one version, nothing else. */
  readonly previousReleaseWire: boolean;
  /** This node's software release, sent in the hello. */
  readonly softwareVersion: string;
  /** Called with the peer's protocol each time a handshake with it succeeds. */
  readonly onPeerProtocol?: (peer: NodeId, protocol: PeerProtocol) => void;
  /** Called when the peer refused this node because it saw it removed from the cluster. */
  readonly onRemovedByPeer?: (peer: NodeId, reason: string) => void;
  /** Tells the runtime that messages to the peer were lost (rate-limited here). */
  readonly reportUnreachable: (peer: NodeId) => void;
  /**
   * The peer's accepted connection to this node, when its link speaks protocol 3 or later: the
   * way back for copies of control messages (default: none).
   */
  readonly reverseWriter?: () => ReverseWriter | undefined;
  /** The way to send the peer datagrams (datagram-channel.ts), when there is one (default: none). */
  readonly datagramWriter?: () => ReverseWriter | undefined;
  /** Called with the socket of each connection whose handshake succeeded (to key datagrams). */
  readonly onConnected?: (socket: Socket) => void;
  /** Messages the peer sent back on this connection (protocol 3 or later), already checked. */
  readonly onMessages?: (messages: readonly Message[]) => void;
  /** Where bad input on this connection is counted and (rate-limited) logged. */
  readonly refusals?: RefusalLog;
  /**
   * Tells the runtime how a snapshot ended: exactly once per Snap message given to
   * {@link PeerConnection.enqueue}, never synchronously inside it.
   */
  readonly reportSnapshot: (peer: NodeId, outcome: SnapshotDelivery) => void;
}

type State = "idle" | "connecting" | "connected" | "backoff" | "closed";

/** A snapshot being streamed: the Snap message and how far its data has gone. */
interface SnapshotStream {
  readonly id: bigint;
  readonly message: Message;
  readonly data: Uint8Array;
  offsetBytes: number;
  /** Set once its outcome was reported (so it is reported exactly once). */
  reported: boolean;
}

/**
 * Hearing from the peer restarts a dial whose TCP connect has been pending this long, in ms: on a
 * LAN a connect takes well under a millisecond, so one this old lost its SYN.
 */
const REDIAL_ON_HEARD_AFTER_MS = 100;

/**
 * Once a link has connected, a dial is abandoned after this many times its connects' recent
 * latency (at least {@link MIN_CONNECT_TIMEOUT_MS}, at most the configured connect timeout):
 * a SYN dropped by a partition is retransmitted by the kernel only after 1 s, so after a heal
 * the link waits for the abandoned dial's timeout plus a backoff. On a LAN that wait was up to
 * 500 ms of the heal-to-replication time; a WAN link, whose connects take longer, keeps a
 * proportionally longer timeout.
 */
const CONNECT_TIMEOUT_PER_LATENCY = 4;
/** The least adaptive connect timeout, in ms: an event-loop turn on a loaded node can take this. */
export const MIN_CONNECT_TIMEOUT_MS = 100;

/** The estimated bytes a message occupies in a frame (for the queue and batch bounds). */
export function estimateMessageBytes(m: Message): number {
  let bytes = MESSAGE_OVERHEAD_BYTES + (m.context?.length ?? 0);
  for (const e of m.entries) bytes += ENTRY_OVERHEAD_BYTES + e.data.length;
  return bytes;
}

/** One peer's outbound link. Messages are sent in order; any may be dropped (Raft tolerates it). */
export class PeerConnection {
  readonly stats: PeerStats;
  private state: State = "idle";
  private address: PeerAddress;
  private socket: Socket | undefined;
  private timer: TimerHandle | undefined;
  private readonly backoff: Backoff;
  private queue: Message[] = [];
  private queuedBytes = 0;
  private snapshot: SnapshotStream | undefined;
  /** The stream whose last chunk is written but not yet flushed to the kernel. */
  private snapshotFlushing: SnapshotStream | undefined;
  private nextSnapshotId = 1n;
  private flushScheduled = false;
  private awaitingDrain = false;
  private lastUnreachableReportMs = -Infinity;
  /** The versions the newest hello offered. */
  private offeredRange: ProtocolRange = { min: 0, max: 0 };
  /** The version the current connection speaks (0 until a handshake succeeded). */
  private linkVersion = 0;
  private readonly liveness: LinkLiveness;
  private connectTimer: TimerHandle | undefined;
  /** When the current dial began, and when the current connection was accepted (clock ms). */
  private dialStartedMs = 0;
  private connectedAtMs = 0;
  /** Recent TCP connect latency, in ms (undefined until a connect succeeded); see below. */
  private connectLatencyMs: number | undefined;
  private readonly reversePath: ReversePath;
  private readonly datagramPath: ReversePath;
  private readonly duplexPolicy: DuplexPolicy;

  constructor(private readonly options: PeerConnectionOptions) {
    this.address = options.address;
    this.duplexPolicy = new DuplexPolicy({
      clock: options.clock,
      afterSilenceMs: options.limits.duplexAfterSilenceMs,
      holdMs: options.limits.duplexHoldMs,
      lastHeardMs: () => this.liveness.lastHeardMs,
    });
    this.reversePath = new ReversePath({
      clusterId: options.clusterId,
      selfId: options.selfId,
      peerId: options.peerId,
      writer: options.reverseWriter ?? (() => undefined),
      copies: (type) => this.duplexPolicy.copies(type),
    });
    // Datagrams copy what the reverse connection copies, when it copies it.
    this.datagramPath = new ReversePath({
      clusterId: options.clusterId,
      selfId: options.selfId,
      peerId: options.peerId,
      writer: options.datagramWriter ?? (() => undefined),
      copies: (type) => this.duplexPolicy.copies(type),
    });
    this.stats = {
      messagesSent: 0,
      messagesDropped: 0,
      framesSent: 0,
      bytesSent: 0,
      snapshotsSent: 0,
      snapshotsAborted: 0,
      connects: 0,
      connectFailures: 0,
      livenessResets: 0,
      reverse: this.reversePath.stats,
      messagesReceivedBack: 0,
      datagram: this.datagramPath.stats,
      messagesReceivedByDatagram: 0,
    };
    this.backoff = new Backoff(
      options.random,
      options.limits.reconnectBaseDelayMs,
      options.limits.reconnectMaxDelayMs,
    );
    this.liveness = new LinkLiveness({
      clock: options.clock,
      silenceLimitMs: options.limits.silenceLimitMs,
      drainTimeoutMs: options.limits.drainTimeoutMs,
      onDead: (reason, forMs) => this.resetDeadLink(reason, forMs),
    });
  }

  /** Messages queued and not yet written. */
  get queuedMessages(): number {
    return this.queue.length;
  }

  /** True once the peer has accepted the handshake, until the connection drops. */
  get connected(): boolean {
    return this.state === "connected";
  }

  /**
   * A frame from the peer arrived on some connection: the link is not silent, and the peer is
   * reachable, so a pending reconnect happens now rather than after its backoff, and a dial
   * still waiting for the TCP connect (a SYN lost before a heal) starts afresh.
   */
  heard(): void {
    this.liveness.heard();
    if (this.state === "backoff") {
      this.timer?.cancel();
      this.timer = undefined;
      this.connect();
    } else if (
      this.state === "connecting" &&
      this.socket?.connecting === true &&
      this.options.clock.now() - this.dialStartedMs >= REDIAL_ON_HEARD_AFTER_MS
    ) {
      this.redialNow();
    }
  }

  /**
   * The peer sent these control messages as a datagram. Like its copies on this node's own
   * connection they do not count as hearing it (see {@link onBatchBack}); a heartbeat among them
   * says it is copying its heartbeats (duplex-policy.ts).
   */
  datagramArrived(messages: readonly Message[]): void {
    this.stats.messagesReceivedByDatagram += messages.length;
    for (const m of messages) {
      if (m.type === MessageType.Heartbeat) this.duplexPolicy.heartbeatCameBack();
    }
  }

  /**
   * The peer dialled this node again while its previous connection was up: it stopped hearing
   * from this node, so this link's connection (which may look healthy from here, being stuck in
   * the kernel's retransmission backoff) is reset, unless it is itself new.
   */
  peerRedialled(): void {
    if (this.state !== "connected") return;
    const ageMs = this.options.clock.now() - this.connectedAtMs;
    if (ageMs < this.options.limits.silenceLimitMs / 2) return;
    this.options.logger.info("peer redialled this node; resetting the link to it", {
      peer: this.options.peerId,
      connectionAgeMs: ageMs,
    });
    this.stats.livenessResets++;
    this.socket?.destroy();
  }

  /** Points the link at a new address; the current connection is dropped and redialled. */
  setAddress(address: PeerAddress): void {
    this.address = address;
    if (this.socket !== undefined) this.socket.destroy();
  }

  /**
   * Queues `m`, or drops it (and reports the peer unreachable) when the queue is full. A Snap
   * message starts a snapshot stream unless one is already running, in which case it is dropped.
   */
  enqueue(m: Message): void {
    const isSnapshot = m.type === MessageType.Snap && m.snapshot !== undefined;
    if (this.state === "closed") {
      if (isSnapshot) this.reportLater("failure");
      return;
    }
    if (this.state !== "connected" || this.awaitingDrain) {
      // No connection of ours to the peer that takes bytes now (none, or one whose socket is
      // backed up), but the peer's connection to this node is up (it just delivered), or a
      // datagram can go: a control message goes that way now rather than waiting for a connect,
      // a backoff or a drain it would be stale after.
      const back = this.reversePath.send(m);
      if (this.datagramPath.send(m) || back) {
        if (this.state === "idle") this.connect();
        return;
      }
    }
    if (this.state === "backoff") {
      // The peer is unreachable: what is sent now would be stale by the time a connection is up
      // (a burst of old votes and heartbeats at the heal). Drop it; Raft resends what matters.
      this.drop(1);
      if (isSnapshot) this.reportLater("failure");
      return;
    }
    if (isSnapshot) {
      if (this.snapshot !== undefined || this.snapshotFlushing !== undefined) {
        // The core sends one snapshot per follower until it hears how that one ended, so this
        // is a new leadership's snapshot racing an old one: let the old one finish.
        this.options.logger.debug("snapshot dropped: another is still streaming", {
          peer: this.options.peerId,
          index: m.snapshot?.metadata.index,
        });
        this.drop(1);
        this.reportLater("failure");
        return;
      }
      this.snapshot = {
        id: this.nextSnapshotId++,
        message: m,
        data: m.snapshot!.data,
        offsetBytes: 0,
        reported: false,
      };
    } else {
      const bytes = estimateMessageBytes(m);
      const limits = this.options.limits;
      if (
        this.queue.length >= limits.maxQueuedMessages ||
        this.queuedBytes + bytes > limits.maxQueuedBytes
      ) {
        this.drop(1);
        return;
      }
      this.queue.push(m);
      this.queuedBytes += bytes;
    }
    if (this.state === "idle") this.connect();
    else this.scheduleFlush();
  }

  /** Closes the link for good: drops what is queued, cancels timers, destroys the socket. */
  close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.timer?.cancel();
    this.timer = undefined;
    this.connectTimer?.cancel();
    this.connectTimer = undefined;
    this.liveness.reset();
    this.socket?.destroy();
    this.socket = undefined;
    this.queue = [];
    this.queuedBytes = 0;
    this.reversePath.clear();
    this.datagramPath.clear();
    this.abortSnapshots();
  }

  // ---------------------------------------------------------------------------------------------
  // Connection lifecycle

  private connect(): void {
    if (this.state === "closed") return;
    this.state = "connecting";
    this.dialStartedMs = this.options.clock.now();
    const { clusterId, selfId, peerId, limits, logger } = this.options;
    // Until the peer's answer the connection carries a hello-sized frame at most (the answer or
    // a refusal); the ack raises the bound for the batches of a protocol-3 link.
    const reader = new FrameReader(limits.maxHelloFrameSizeBytes);
    const socket = this.options.dial(this.address, () => {
      this.observeConnectLatency(this.options.clock.now() - this.dialStartedMs);
      socket.setNoDelay(true);
      // Node does not expose TCP_USER_TIMEOUT; the silence limit does its job for written data,
      // and keepalive probes find a peer that vanished while the link was idle.
      socket.setKeepAlive(true, limits.silenceLimitMs);
      const range = this.options.protocolRange();
      this.offeredRange = range;
      const hello = create(HelloSchema, {
        clusterId,
        fromId: BigInt(selfId),
        toId: BigInt(peerId),
        protocolVersion: range.min,
        ...(this.options.previousReleaseWire
          ? {}
          : { maxProtocolVersion: range.max, softwareVersion: this.options.softwareVersion }),
      });
      socket.write(encodeFrame(frame({ case: "hello", value: hello })));
    });
    this.socket = socket;
    this.timer = this.options.clock.setTimer(limits.handshakeTimeoutMs, () => {
      logger.debug("peer handshake timed out", {
        peer: peerId,
        address: formatAddress(this.address),
      });
      socket.destroy();
    });
    const clock = this.options.clock;
    this.connectTimer = clock.setTimer(this.connectTimeoutMs(), () => {
      // Checked once more on a later turn: after a turn that ran long (a loaded machine), timers
      // run before the poll phase that delivers a connect completed meanwhile, and a short
      // timeout would abandon a link that is up.
      this.connectTimer = clock.setTimer(0, () => {
        this.connectTimer = undefined;
        if (!socket.connecting) return;
        logger.debug("peer connect timed out", {
          peer: peerId,
          address: formatAddress(this.address),
        });
        socket.destroy();
      });
    });
    socket.on("data", (chunk: Buffer) => {
      try {
        reader.pushEach(chunk, (body) => {
          this.onFrame(socket, reader, body);
          return !socket.destroyed;
        });
      } catch (error) {
        // Nothing a peer sends throws out of this handler: the connection is closed (and
        // redialled), counted with the accepting side's refusals when it was a bad message.
        this.refused(socket, error);
      }
    });
    socket.on("error", (error) => {
      logger.debug("peer connection error", { peer: peerId, error: error.message });
    });
    socket.on("close", () => this.onClose(socket));
  }

  /**
   * The receiver speaks during the handshake (an ack or a refusal) and, on a link of protocol 3
   * or later, sends its copies of control messages back (see duplex-path.ts).
   */
  private onFrame(socket: Socket, reader: FrameReader, body: Uint8Array): void {
    if (body[0] === BATCH_FRAME_TAG && this.state === "connected" && socket === this.socket) {
      this.onBatchBack(body);
      return;
    }
    const f = decodeFrame(body);
    if (f.kind.case === "helloAck" && this.state === "connecting") {
      if (Number(f.kind.value.nodeId) !== this.options.peerId) {
        this.options.logger.warn("peer answered with another node id; closing", {
          peer: this.options.peerId,
          answeredId: Number(f.kind.value.nodeId),
        });
        socket.destroy();
        return;
      }
      const ack = f.kind.value;
      // An answer without a version is the release before protocol 2's: the link speaks the
      // oldest version offered (the only one that release accepts).
      const linkVersion = ack.protocolVersion === 0 ? this.offeredRange.min : ack.protocolVersion;
      // The oldest version now, not the one offered: the node may have moved on meanwhile.
      const oldest = Math.max(this.offeredRange.min, this.options.protocolRange().min);
      if (linkVersion < oldest || linkVersion > this.offeredRange.max) {
        this.options.logger.warn(
          "peer answered with a protocol version this node does not speak; closing",
          {
            peer: this.options.peerId,
            answered: linkVersion,
          },
        );
        socket.destroy();
        return;
      }
      this.linkVersion = linkVersion;
      if (linkVersion >= DUPLEX_PROTOCOL_VERSION)
        reader.maxFrameSizeBytes = this.options.limits.maxFrameSizeBytes;
      this.options.onPeerProtocol?.(this.options.peerId, {
        protocolVersion: linkVersion,
        maxProtocolVersion: Math.max(linkVersion, ack.maxProtocolVersion),
        ...(ack.softwareVersion === "" ? {} : { softwareVersion: ack.softwareVersion }),
      });
      this.timer?.cancel();
      this.timer = undefined;
      this.state = "connected";
      this.connectedAtMs = this.options.clock.now();
      this.liveness.heard();
      this.stats.connects++;
      this.backoff.reset();
      this.options.logger.debug("connected to peer", { peer: this.options.peerId });
      this.options.onConnected?.(socket);
      this.flush();
      return;
    }
    if (f.kind.case === "refusal") {
      const reason = f.kind.value.reason;
      if (reason.startsWith(REMOVED_REFUSAL) && this.options.onRemovedByPeer !== undefined) {
        this.options.onRemovedByPeer(this.options.peerId, reason);
      } else {
        this.options.logger.warn("peer refused the connection", {
          peer: this.options.peerId,
          reason,
        });
      }
    } else {
      this.options.logger.warn("unexpected frame from peer; closing", {
        peer: this.options.peerId,
        kind: f.kind.case,
      });
    }
    socket.destroy();
  }

  /**
   * A batch the peer sent back on this connection: refused unless the link speaks protocol 3 or
   * later, and checked as on the accepting side; only the control messages of duplex-path.ts
   * may come this way (a correct peer sends nothing else back).
   * @throws ProtocolViolation, InvalidMessage or InvalidArgumentError on bad input.
   */
  private onBatchBack(body: Uint8Array): void {
    const { clusterId, peerId, selfId, limits } = this.options;
    if (this.linkVersion < DUPLEX_PROTOCOL_VERSION) {
      throw new ProtocolViolation(
        `a batch on the dialling side of a link of protocol ${this.linkVersion}`,
      );
    }
    const messages = checkBatch(decodeBatchFrame(body), { clusterId, peerId, selfId }, limits);
    for (const m of messages) {
      if (!isDuplexType(m.type)) {
        throw new ProtocolViolation(`message type ${m.type} sent back on the dialling side`);
      }
      // The peer copies its heartbeats: it is not hearing this node's answers (duplex-policy.ts).
      if (m.type === MessageType.Heartbeat) this.duplexPolicy.heartbeatCameBack();
    }
    this.stats.messagesReceivedBack += messages.length;
    // Not `heard()`: the liveness of this connection asks whether what it carries to the peer
    // arrives, and a copy coming back on it proves only the opposite direction (the peer may be
    // answering the copies of this node's control messages that went on its own connection).
    // Counted, this kept connections whose data was stuck in a retransmission backoff from
    // being reset: after loss ended, replication waited for the kernel's next retransmission
    // (seed 32001: worst heal-to-replication 1,309 ms against 728 ms without it).
    this.options.onMessages?.(messages);
  }

  /** Closes `socket` after bad input from the peer, counting it as the accepting side does. */
  private refused(socket: Socket, error: unknown): void {
    const { peerId, logger, refusals } = this.options;
    const reason = error instanceof Error ? error.message : String(error);
    const fields = { peer: peerId, reason };
    if (refusals === undefined) {
      logger.warn("bad frame from peer; closing the connection", fields);
    } else {
      refusals.refused(
        error instanceof InvalidMessage ? "message" : "connection",
        socket.remoteAddress ?? "?",
        error instanceof InvalidMessage
          ? "dropped invalid messages from peer; closing the connection to it"
          : "bad frame from peer; closing the connection to it",
        fields,
      );
    }
    socket.destroy();
  }

  /**
   * A slower connect counts at once, a faster one halves the distance: a link whose connects
   * slowed (a loaded peer, a longer route) does not keep abandoning dials that would succeed.
   */
  private observeConnectLatency(ms: number): void {
    const previous = this.connectLatencyMs;
    this.connectLatencyMs = previous === undefined || ms >= previous ? ms : (previous + ms) / 2;
  }

  /** The connect timeout of the next dial: see {@link CONNECT_TIMEOUT_PER_LATENCY}. */
  private connectTimeoutMs(): number {
    const limit = this.options.limits.connectTimeoutMs;
    if (this.connectLatencyMs === undefined) return limit;
    return Math.min(
      limit,
      Math.max(MIN_CONNECT_TIMEOUT_MS, CONNECT_TIMEOUT_PER_LATENCY * this.connectLatencyMs),
    );
  }

  /** Abandons the current dial (its socket's close is ignored) and dials again at once. */
  private redialNow(): void {
    const socket = this.socket;
    this.socket = undefined;
    this.timer?.cancel();
    this.timer = undefined;
    this.connectTimer?.cancel();
    this.connectTimer = undefined;
    socket?.destroy();
    this.connect();
  }

  /**
   * Closes the connection (it redials with a fresh hello) if it speaks a version below
   * `version`: the node no longer speaks it. Throws nothing.
   */
  resetIfBelow(version: number): void {
    if (this.state !== "connected" || this.linkVersion >= version) return;
    this.options.logger.info(
      "peer link speaks an older protocol than this node now needs; redialling",
      {
        peer: this.options.peerId,
        linkVersion: this.linkVersion,
        required: version,
      },
    );
    this.socket?.destroy();
  }

  private resetDeadLink(reason: "silent" | "undrained", forMs: number): void {
    if (this.state !== "connected") return;
    this.options.logger.info(
      reason === "silent"
        ? "peer silent past the limit; resetting the link"
        : "peer link did not drain within the limit; resetting it",
      { peer: this.options.peerId, forMs: Math.round(forMs), queued: this.queue.length },
    );
    this.stats.livenessResets++;
    this.socket?.destroy();
  }

  private onClose(socket: Socket): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.timer?.cancel();
    this.timer = undefined;
    this.connectTimer?.cancel();
    this.connectTimer = undefined;
    this.liveness.reset();
    this.awaitingDrain = false;
    if (this.state === "closed") return;
    if (this.state !== "connected") this.stats.connectFailures++;
    // What was queued is stale by the time a new connection is up; drop it and let Raft resend.
    const lost = this.queue.length;
    this.queue = [];
    this.queuedBytes = 0;
    const aborted = this.snapshot ?? this.snapshotFlushing;
    if (aborted !== undefined) {
      this.options.logger.warn("snapshot stream to peer aborted: connection lost", {
        peer: this.options.peerId,
        sentBytes: aborted.offsetBytes,
        totalBytes: aborted.data.length,
      });
      this.stats.snapshotsAborted++;
    }
    this.abortSnapshots();
    this.drop(lost);
    this.state = "backoff";
    const delayMs = this.backoff.nextDelayMs();
    this.timer = this.options.clock.setTimer(delayMs, () => {
      this.timer = undefined;
      this.connect();
    });
  }

  /** Reports the streams still open as failed and forgets them. */
  private abortSnapshots(): void {
    for (const stream of [this.snapshot, this.snapshotFlushing]) {
      if (stream !== undefined) this.endSnapshot(stream, "failure");
    }
    this.snapshot = undefined;
    this.snapshotFlushing = undefined;
  }

  /** Reports `stream`'s outcome unless it was reported already. */
  private endSnapshot(stream: SnapshotStream, outcome: SnapshotDelivery): void {
    if (stream.reported) return;
    stream.reported = true;
    if (this.snapshotFlushing === stream) this.snapshotFlushing = undefined;
    this.reportLater(outcome);
  }

  /** Reports a snapshot outcome after the current call (never re-entering the sender). */
  private reportLater(outcome: SnapshotDelivery): void {
    const peer = this.options.peerId;
    queueMicrotask(() => this.options.reportSnapshot(peer, outcome));
  }

  private drop(count: number): void {
    this.stats.messagesDropped += count;
    const nowMs = this.options.clock.now();
    if (nowMs - this.lastUnreachableReportMs < this.options.limits.unreachableReportIntervalMs) {
      return;
    }
    this.lastUnreachableReportMs = nowMs;
    this.options.reportUnreachable(this.options.peerId);
  }

  // ---------------------------------------------------------------------------------------------
  // Writing

  /** Coalesces every message queued in this event-loop turn into as few frames as possible. */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.state !== "connected") return;
    this.flushScheduled = true;
    // setImmediate, not a Clock timer: this is "after the current turn", not a delay, and a
    // 1 ms timer would add a millisecond to every round trip.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const socket = this.socket;
    if (this.state !== "connected" || socket === undefined || this.awaitingDrain) return;
    let writable = true;
    socket.cork();
    while (this.queue.length > 0 && writable) writable = this.writeBatch(socket);
    // Snapshot chunks go after pending messages and one at a time per drain, so heartbeats and
    // votes never wait behind more than one chunk.
    if (writable && this.snapshot !== undefined)
      writable = this.writeSnapshotChunk(socket, this.snapshot);
    socket.uncork();
    if (!writable) {
      this.awaitingDrain = true;
      this.liveness.blocked();
      socket.once("drain", () => {
        this.awaitingDrain = false;
        this.liveness.drained();
        this.flush();
      });
    } else if (this.snapshot !== undefined) {
      this.scheduleFlush();
    }
  }

  /** Writes one batch frame from the head of the queue; false if the socket wants a drain. */
  private writeBatch(socket: Socket): boolean {
    const { limits, peerId, logger } = this.options;
    // Close a batch at the target size, and well inside the frame limit (sizes are estimates).
    const batchBytes = Math.min(limits.targetBatchBytes, limits.maxFrameSizeBytes / 2);
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length) {
      const size = estimateMessageBytes(this.queue[count]!);
      if (count > 0 && bytes + size > batchBytes) break;
      bytes += size;
      count++;
    }
    let encoded = this.encodeBatch(count);
    // Estimates can be off: halve the batch until it fits; a lone message that does not fit is
    // dropped (the runtime bounds entries per message, so this is a misconfiguration).
    while (encoded.length - FRAME_HEADER_BYTES > limits.maxFrameSizeBytes && count > 1) {
      count = Math.ceil(count / 2);
      encoded = this.encodeBatch(count);
    }
    const messages = this.queue.splice(0, count);
    for (const m of messages) this.queuedBytes -= estimateMessageBytes(m);
    if (encoded.length - FRAME_HEADER_BYTES > limits.maxFrameSizeBytes) {
      logger.warn("message larger than the frame limit dropped", {
        peer: peerId,
        frameBytes: encoded.length,
        maxFrameSizeBytes: limits.maxFrameSizeBytes,
      });
      this.drop(count);
      return true;
    }
    this.stats.messagesSent += count;
    this.stats.framesSent++;
    this.stats.bytesSent += encoded.length;
    this.liveness.wrote();
    this.reversePath.duplicate(messages, encoded);
    this.datagramPath.duplicate(messages, encoded);
    return socket.write(encoded);
  }

  /** The frame of the first `count` queued messages. */
  private encodeBatch(count: number): Uint8Array {
    const { clusterId, selfId, peerId } = this.options;
    return encodeBatchFrame({
      clusterId,
      from: selfId,
      to: peerId,
      messages: count === this.queue.length ? this.queue : this.queue.slice(0, count),
    });
  }

  private writeSnapshotChunk(socket: Socket, stream: SnapshotStream): boolean {
    const chunkBytes = this.options.limits.snapshotChunkSizeBytes;
    const start = stream.offsetBytes;
    const end = Math.min(stream.data.length, start + chunkBytes);
    const last = end === stream.data.length;
    const chunk = create(SnapshotChunkSchema, {
      snapshotId: stream.id,
      offset: BigInt(start),
      data: stream.data.subarray(start, end),
      last,
    });
    if (start === 0) {
      chunk.message = toWireMessage(stream.message, false);
      chunk.totalSizeBytes = BigInt(stream.data.length);
    }
    const encoded = encodeFrame(frame({ case: "snapshotChunk", value: chunk }));
    stream.offsetBytes = end;
    this.liveness.wrote();
    this.stats.framesSent++;
    this.stats.bytesSent += encoded.length;
    if (!last) return socket.write(encoded);
    this.snapshot = undefined;
    this.snapshotFlushing = stream;
    this.stats.snapshotsSent++;
    this.stats.messagesSent++;
    this.options.logger.info("snapshot sent to peer", {
      peer: this.options.peerId,
      index: stream.message.snapshot?.metadata.index,
      sizeBytes: stream.data.length,
    });
    // Finished once the kernel has the last chunk: whatever the leader sends next (the probe
    // after the report) follows it on this connection, so the peer steps the snapshot first.
    return socket.write(encoded, (error) =>
      this.endSnapshot(stream, error === undefined || error === null ? "finish" : "failure"),
    );
  }
}
