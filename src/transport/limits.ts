/**
 * The bounds of the peer transport, each a named constant with its unit. Every queue, frame and
 * stream is bounded so that a slow or dead peer costs a fixed amount of memory.
 */

/** Limits and timings of a {@link TcpTransport}; every field has a default. */
export interface TransportLimits {
  /** Raft messages queued for one peer, at most; past it new messages are dropped. */
  readonly maxQueuedMessages: number;
  /** Bytes (estimated) queued for one peer, at most; past it new messages are dropped. */
  readonly maxQueuedBytes: number;
  /** Largest frame sent or accepted, in bytes; a peer sending a larger one is disconnected. */
  readonly maxFrameSizeBytes: number;
  /** A batch frame is closed once its messages reach this many (estimated) bytes. */
  readonly targetBatchBytes: number;
  /** Bytes of snapshot data per chunk frame. */
  readonly snapshotChunkSizeBytes: number;
  /** Largest snapshot accepted from a peer, in bytes. */
  readonly maxSnapshotSizeBytes: number;
  /** First reconnect delay after a failure, in ms; doubles per failure. */
  readonly reconnectBaseDelayMs: number;
  /** Largest reconnect delay, in ms. */
  readonly reconnectMaxDelayMs: number;
  /** Time allowed to connect and be accepted (hello answered), in ms. */
  readonly handshakeTimeoutMs: number;
  /** At most one unreachable report per peer per this many ms (a dead peer would flood otherwise). */
  readonly unreachableReportIntervalMs: number;
  /**
   * Time allowed for the TCP connect itself, in ms. Short on purpose: a SYN lost to a partition
   * is retried by the kernel only after 1 s, then 3 s, 7 s…; dialling afresh is faster. Once a
   * link has connected, its own connects' latency shortens it (see peer-connection.ts).
   */
  readonly connectTimeoutMs: number;
  /**
   * A link that wrote and heard nothing from its peer for this long is closed and redialled, in
   * ms (see link-liveness.ts). Tie it to the election timeout: {@link silenceLimitForElectionTimeout}.
   */
  readonly silenceLimitMs: number;
  /** A link whose socket has not drained for this long is closed and redialled, in ms. */
  readonly drainTimeoutMs: number;
  /**
   * Heartbeats also go on the reverse path once the peer has been silent this long, in ms
   * (duplex-policy.ts). Tie it to the heartbeat interval: {@link duplexLimitsForTimings}.
   */
  readonly duplexAfterSilenceMs: number;
  /** Answers also go on the reverse path this long after a heartbeat came back on it, in ms. */
  readonly duplexHoldMs: number;
  /**
   * Largest frame accepted before the hello is accepted, in bytes: a hello is about 100 bytes,
   * so an unauthenticated socket can make this node hold at most this much.
   */
  readonly maxHelloFrameSizeBytes: number;
  /** Inbound peer connections open at once, at most; past it new ones are closed at once. */
  readonly maxInboundConnections: number;
  /** Inbound connections that have not completed their hello, at most (each also times out). */
  readonly maxPendingHandshakes: number;
  /** Bytes of a message's context (read request ids, campaign kind), at most. */
  readonly maxContextBytes: number;
  /** Members listed in a snapshot's configuration (all lists together), at most. */
  readonly maxConfStateMembers: number;
  /** At most one log line per remote address and kind of refusal per this many ms; 0 logs all. */
  readonly refusalLogIntervalMs: number;
}

/** The smallest silence limit, in ms: below it a busy event loop would look like a dead link. */
export const MIN_SILENCE_LIMIT_MS = 1000;

/**
 * The silence limit for an election timeout: twice it (a live peer answers within a heartbeat,
 * and a cluster without a leader re-campaigns within one election timeout), at least
 * {@link MIN_SILENCE_LIMIT_MS}.
 */
export function silenceLimitForElectionTimeout(electionTimeoutMs: number): number {
  return Math.max(MIN_SILENCE_LIMIT_MS, 2 * electionTimeoutMs);
}

/**
 * The reverse-path timings for a heartbeat interval and an election timeout: heartbeats are
 * copied once the answer to the previous one is half an interval late, and answers while copied
 * heartbeats keep coming, for up to an election timeout after the last.
 */
export function duplexLimitsForTimings(
  heartbeatIntervalMs: number,
  electionTimeoutMs: number,
): Pick<TransportLimits, "duplexAfterSilenceMs" | "duplexHoldMs"> {
  return {
    duplexAfterSilenceMs: Math.round(1.5 * heartbeatIntervalMs),
    duplexHoldMs: electionTimeoutMs,
  };
}

const MiB = 1024 * 1024;

/** The defaults: generous for a LAN cluster, small enough for a 1 GiB node. */
export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = Object.freeze({
  maxQueuedMessages: 4096,
  maxQueuedBytes: 64 * MiB,
  maxFrameSizeBytes: 16 * MiB,
  targetBatchBytes: 1 * MiB,
  snapshotChunkSizeBytes: 1 * MiB,
  maxSnapshotSizeBytes: 4096 * MiB,
  reconnectBaseDelayMs: 25,
  // Small: after a heal the next dial (the connect timeout, 100 ms on a LAN, + this) starts
  // within 250 ms.
  reconnectMaxDelayMs: 150,
  handshakeTimeoutMs: 2000,
  unreachableReportIntervalMs: 100,
  connectTimeoutMs: 500,
  // Twice the runtime's default election timeout (10 ticks of 100 ms); `node start` passes its own.
  silenceLimitMs: 2000,
  drainTimeoutMs: 2000,
  // The runtime's default heartbeat interval (100 ms) and election timeout (1 s).
  duplexAfterSilenceMs: 150,
  duplexHoldMs: 1000,
  maxHelloFrameSizeBytes: 1024,
  maxInboundConnections: 256,
  maxPendingHandshakes: 64,
  maxContextBytes: 4096,
  maxConfStateMembers: 1024,
  refusalLogIntervalMs: 10_000,
});

/** Bytes a message costs in a frame beyond its payloads: the fixed fields and tags. */
export const MESSAGE_OVERHEAD_BYTES = 64;
/** Bytes an entry costs in a frame beyond its data. */
export const ENTRY_OVERHEAD_BYTES = 24;
