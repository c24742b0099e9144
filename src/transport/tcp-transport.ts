/**
 * The real peer transport: raft messages in length-prefixed protobuf frames over one long-lived
 * TCP (optionally TLS) connection per ordered peer pair. Each node dials every peer it sends to
 * and accepts its peers' connections; a connection carries a node's messages from the dialler,
 * as etcd's rafthttp stream does, and on links of protocol 3 or later copies of the small control
 * messages back from the accepting side too (duplex-path.ts: under packet loss an answer does not
 * wait for the other connection's retransmission timeout), and as UDP datagrams on the peer port
 * (datagram-channel.ts). See ARCHITECTURE.md, "Transport".
 */
import {
  createServer as createNetServer,
  connect as netConnect,
  type Server,
  type Socket,
} from "node:net";
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from "node:tls";
import type { Clock } from "../common/clock.js";
import { InvalidArgumentError, UnavailableError } from "../common/errors.js";
import type { Random } from "../common/random.js";
import { MessageType, type Message, type NodeId } from "../raft/types.js";
import { formatAddress, parsePeerAddress, type PeerAddress } from "./address.js";
import { DatagramChannel, datagramKeyOf, type DatagramStats } from "./datagram-channel.js";
import { InboundConnection } from "./inbound-connection.js";
import { DEFAULT_TRANSPORT_LIMITS, type TransportLimits } from "./limits.js";
import { SILENT_LOGGER, type Logger } from "../common/logger.js";
import { PeerConnection, type PeerStats } from "./peer-connection.js";
import { RefusalLog, type RefusalStats } from "./refusal-log.js";
import type { Transport } from "./transport.js";
import { invalidMessageReason } from "./validate-message.js";
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from "./codec.js";
import {
  type PeerProtocol,
  type ProtocolRange,
  RANGE_PROTOCOL_VERSION,
} from "./protocol-version.js";

/** What one peer sent this node. */
export interface ReceivedStats {
  messagesReceived: number;
  /** Complete snapshots received (reassembled from their chunks). */
  snapshotsReceived: number;
}

/** Mutual TLS between peers: every node presents `cert` and trusts peers signed by `ca`. */
export interface TransportTlsOptions {
  /** This node's certificate chain, PEM. */
  readonly cert: string | Uint8Array;
  /** This node's private key, PEM. */
  readonly key: string | Uint8Array;
  /** The certificate authorities that sign peers' certificates, PEM. */
  readonly ca: string | Uint8Array;
  /** The name checked against a peer's certificate; default: the host dialled. */
  readonly serverName?: string;
  /**
   * The name checked against the certificate of the peer dialled, by its id (wins over
   * `serverName`): a node gives its peers' identity names (`node-<id>.<cluster>.blixard`), so
   * a dialled address answered by another node's certificate is refused.
   */
  readonly peerServerName?: (peerId: NodeId) => string;
}

/** Options of a {@link TcpTransport}. */
export interface TcpTransportOptions {
  /** This node's raft id. */
  readonly nodeId: NodeId;
  /** Checked on every connection and batch: nodes of another cluster are refused. */
  readonly clusterId: string;
  /** Where to accept peers' connections; port 0 picks a free port (see {@link TcpTransport.address}). */
  readonly listen: { readonly host: string; readonly port: number };
  /** The peers and their addresses (`URL`, `host:port` or `{host, port}`); see addPeer/removePeer. */
  readonly peers?: ReadonlyMap<NodeId, URL | string | PeerAddress>;
  readonly clock: Clock;
  /**
   * Seeds the reconnect jitter and the datagram epoch (which must differ between two starts of a
   * node without TLS: `node start` seeds it from the OS).
   */
  readonly random: Random;
  /** Default: silent. */
  readonly logger?: Logger;
  /** Overrides of {@link DEFAULT_TRANSPORT_LIMITS}. */
  readonly limits?: Partial<TransportLimits>;
  /** Mutual TLS; plain TCP when absent. */
  readonly tls?: TransportTlsOptions;
  /** The protocol this node speaks (default: every version it reads, newest {@link PROTOCOL_VERSION}). */
  readonly protocol?: TransportProtocolOptions;
  /**
   * Copies of control messages as UDP datagrams on the peer port (datagram-channel.ts); default
   * true (false for a node that plays an earlier release, see {@link TransportProtocolOptions}).
   * Off, the node neither sends nor reads them.
   */
  readonly datagrams?: boolean;
}

/** Which protocol versions a {@link TcpTransport} speaks, and what it tells peers about itself. */
export interface TransportProtocolOptions {
  /**
   * The newest version to speak, MIN_PROTOCOL_VERSION..PROTOCOL_VERSION (default the latter).
   * Below PROTOCOL_VERSION the node behaves on the wire as the release of that version did, for
   * upgrade tests only: at 1 it speaks that one version and says nothing else in its handshakes;
   * at 2 it negotiates from 1..2 and never sends messages back on a connection it accepted.
   */
  readonly maxVersion?: number;
  /** The software release sent in handshakes (default "unknown"). */
  readonly softwareVersion?: string;
}

type Handlers = Parameters<Transport["listen"]>[0];

const NO_DATAGRAMS: Readonly<DatagramStats> = {
  datagramsSent: 0,
  datagramsReceived: 0,
  datagramsRepeated: 0,
  datagramsUnauthenticated: 0,
  datagramsRefused: 0,
};

/**
 * A {@link Transport} over TCP or TLS. Best effort, as the port requires: a message may be
 * dropped when its peer's bounded queue is full, while the peer is unreachable, or when a
 * connection breaks; each drop reports the peer unreachable (at most once per
 * `unreachableReportIntervalMs`). Messages to one peer that are delivered on one connection
 * arrive in order; on links of protocol 3 or later votes, pre-votes, heartbeats and their answers
 * also travel on the other connection of the pair, and as datagrams, so they may arrive up to
 * three times, and before messages sent earlier (the core tolerates both).
 */
export class TcpTransport implements Transport {
  private readonly options: TcpTransportOptions;
  private readonly limits: TransportLimits;
  private readonly logger: Logger;
  private readonly peerAddresses = new Map<NodeId, PeerAddress>();
  private readonly outbound = new Map<NodeId, PeerConnection>();
  private readonly inbound = new Set<InboundConnection>();
  /** Each peer's accepted connection that carries copies back to it (protocol 3 or later). */
  private readonly carryingBack = new Map<NodeId, InboundConnection>();
  private readonly received = new Map<NodeId, ReceivedStats>();
  /** Peers removed from the cluster (this process's lifetime): refused as removed. */
  private readonly removedPeers = new Set<NodeId>();
  private removedListener: ((byPeer: NodeId, reason: string) => void) | undefined;
  /** Peers that connected to this node at least once (so a new connection is a redial). */
  private readonly acceptedFrom = new Set<NodeId>();
  private readonly refusals: RefusalLog;
  /** The datagram path (undefined when turned off). */
  private readonly datagrams: DatagramChannel | undefined;
  private server: Server | undefined;
  private boundAddress: PeerAddress | undefined;
  private handlers: Handlers | undefined;
  private closed = false;
  /** The versions this node speaks now: the oldest rises with {@link requireProtocolVersion}. */
  private protocol: ProtocolRange;
  private readonly previousReleaseWire: boolean;
  private readonly softwareVersion: string;
  /** Each peer's protocol from the newest handshake with it, either way. */
  private readonly protocols = new Map<NodeId, PeerProtocol>();

  /** @throws InvalidArgumentError on a bad node id, cluster id, peer address or limit. */
  constructor(options: TcpTransportOptions) {
    if (!Number.isSafeInteger(options.nodeId) || options.nodeId <= 0) {
      throw new InvalidArgumentError(`node id ${options.nodeId} must be a positive integer`);
    }
    if (options.clusterId === "") throw new InvalidArgumentError("cluster id must not be empty");
    this.options = options;
    this.limits = { ...DEFAULT_TRANSPORT_LIMITS, ...options.limits };
    for (const [name, value] of Object.entries(this.limits)) {
      // Only the refusal log interval may be 0 (log every refusal).
      const min = name === "refusalLogIntervalMs" ? 0 : Number.MIN_VALUE;
      if (!Number.isFinite(value) || value < min) {
        throw new InvalidArgumentError(`transport limit ${name} must be positive, got ${value}`);
      }
    }
    if (this.limits.snapshotChunkSizeBytes + 1024 > this.limits.maxFrameSizeBytes) {
      throw new InvalidArgumentError("snapshotChunkSizeBytes must leave room in maxFrameSizeBytes");
    }
    const maxVersion = options.protocol?.maxVersion ?? PROTOCOL_VERSION;
    if (
      !Number.isSafeInteger(maxVersion) ||
      maxVersion < MIN_PROTOCOL_VERSION ||
      maxVersion > PROTOCOL_VERSION
    ) {
      throw new InvalidArgumentError(
        `protocol version ${maxVersion} is outside ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}`,
      );
    }
    // Releases of protocol 2 and later negotiate from a range; the one before spoke one version.
    this.previousReleaseWire = maxVersion < RANGE_PROTOCOL_VERSION;
    // A previous release spoke one version: its own.
    this.protocol = {
      min: this.previousReleaseWire ? maxVersion : MIN_PROTOCOL_VERSION,
      max: maxVersion,
    };
    this.softwareVersion = options.protocol?.softwareVersion ?? "unknown";
    this.logger = options.logger ?? SILENT_LOGGER;
    this.refusals = new RefusalLog(options.clock, this.logger, this.limits.refusalLogIntervalMs);
    // A node playing an earlier release (the test switch) sends and reads none, as those did.
    this.datagrams =
      options.datagrams === false ||
      (options.datagrams === undefined && maxVersion < PROTOCOL_VERSION)
        ? undefined
        : new DatagramChannel({
            selfId: options.nodeId,
            clusterId: options.clusterId,
            secure: options.tls !== undefined,
            epoch: options.random.int(0x1_0000_0000),
            bounds: this.limits,
            logger: this.logger,
            refusals: this.refusals,
            peerAddress: (id) => this.peerAddresses.get(id),
            onMessages: (from, messages) => {
              if (this.closed) return;
              this.outbound.get(from)?.datagramArrived(messages);
              this.handlers?.onMessages(messages);
            },
          });
    for (const [id, address] of options.peers ?? []) this.addPeer(id, address);
  }

  /** The address the transport listens on (with the real port when 0 was asked), once started. */
  get address(): PeerAddress {
    if (this.boundAddress === undefined) throw new UnavailableError("transport not started");
    return this.boundAddress;
  }

  /**
   * Binds the listening socket.
   * @throws Error from node:net if the address cannot be bound (e.g. EADDRINUSE).
   */
  async start(): Promise<PeerAddress> {
    if (this.server !== undefined || this.closed)
      throw new UnavailableError("transport already started or closed");
    const tls = this.options.tls;
    const server =
      tls === undefined
        ? createNetServer((socket) => this.onInbound(socket))
        : createTlsServer(
            {
              cert: pem(tls.cert),
              key: pem(tls.key),
              ca: pem(tls.ca),
              requestCert: true,
              rejectUnauthorized: true,
              minVersion: "TLSv1.2",
              // A socket that never completes the TLS handshake is dropped as fast as one that
              // never sends its hello (Node's default would keep it for 120 s).
              handshakeTimeout: this.limits.handshakeTimeoutMs,
            },
            (socket) => this.onInbound(socket),
          );
    // Sockets past the cap are closed by node:net before any byte is read (TLS or not).
    server.maxConnections = this.limits.maxInboundConnections;
    server.on("tlsClientError", (error: Error, socket: TLSSocket) => {
      // Node only reports a handshake timeout: without this, sockets that never speak stayed
      // open for good and, at the connection cap, locked every real peer out.
      socket.destroy();
      // A certificate our CA did not sign fails after the handshake (Node destroys the socket:
      // "socket hang up"); its verification error is the reason worth logging.
      const untrusted = socket.authorizationError;
      this.refusals.refused(
        "connection",
        socket.remoteAddress ?? "?",
        "refused peer connection: TLS handshake failed",
        // The reason keys the rate limit: another failure (no certificate, another CA) from
        // the same host is logged too.
        {
          remote: `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`,
          reason:
            untrusted === undefined || untrusted === null
              ? error.message
              : `client certificate not trusted: ${String(untrusted)}`,
        },
      );
    });
    server.on("drop", (data?: { remoteAddress?: string; remotePort?: number }) => {
      this.refusals.refused(
        "connection",
        data?.remoteAddress ?? "?",
        "refused peer connection: too many inbound connections",
        {
          remote: `${data?.remoteAddress ?? "?"}:${data?.remotePort ?? "?"}`,
          max: this.limits.maxInboundConnections,
        },
      );
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.listen.port, this.options.listen.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (error) =>
      this.logger.warn("peer listener error", { error: error.message }),
    );
    const bound = server.address();
    if (bound === null || typeof bound === "string")
      throw new UnavailableError("listener has no TCP address");
    this.boundAddress = { host: bound.address, port: bound.port };
    await this.datagrams?.open(bound.address, bound.port);
    this.logger.info("peer transport listening", {
      nodeId: this.options.nodeId,
      address: formatAddress(this.boundAddress),
      tls: tls !== undefined,
    });
    return this.boundAddress;
  }

  /**
   * Adds a peer, or changes its address (its connection is then redialled).
   * @throws InvalidArgumentError on a bad id or address.
   */
  addPeer(id: NodeId, address: URL | string | PeerAddress): void {
    if (!Number.isSafeInteger(id) || id <= 0 || id === this.options.nodeId) {
      throw new InvalidArgumentError(
        `peer id ${id} must be a positive integer other than this node's`,
      );
    }
    const parsed = parsePeerAddress(address);
    this.peerAddresses.set(id, parsed);
    this.removedPeers.delete(id);
    this.outbound.get(id)?.setAddress(parsed);
  }

  /**
   * Forgets a peer: closes its connections both ways and refuses it from now on. With
   * `removed`, the peer left the cluster: it is refused with a reason that tells it so.
   */
  removePeer(id: NodeId, options: { readonly removed?: boolean } = {}): void {
    if (options.removed === true) this.removedPeers.add(id);
    this.peerAddresses.delete(id);
    this.acceptedFrom.delete(id);
    this.datagrams?.forget(id);
    this.outbound.get(id)?.close();
    this.outbound.delete(id);
    for (const connection of this.inbound) if (connection.peerId === id) connection.close();
  }

  /**
   * Calls `listener` when a peer refuses this node because it saw it removed from the cluster
   * (every refusal; the listener decides what to believe).
   */
  onRemovedFromCluster(listener: (byPeer: NodeId, reason: string) => void): void {
    this.removedListener = listener;
  }

  /** The known peers and their addresses. */
  peers(): ReadonlyMap<NodeId, PeerAddress> {
    return this.peerAddresses;
  }

  /** Counters per peer link (for metrics). */
  stats(): ReadonlyMap<NodeId, Readonly<PeerStats>> {
    return new Map([...this.outbound].map(([id, connection]) => [id, connection.stats]));
  }

  /** Counters of what each peer sent this node, accepted connections only (for metrics). */
  receivedStats(): ReadonlyMap<NodeId, Readonly<ReceivedStats>> {
    return this.received;
  }

  /** The datagram path's counters (zeros when it is off or could not bind). */
  datagramStats(): Readonly<DatagramStats> {
    return this.datagrams?.stats ?? NO_DATAGRAMS;
  }

  /** True when peer datagrams are on and their UDP socket is bound. */
  get datagramsOpen(): boolean {
    return this.datagrams?.bound ?? false;
  }

  /** Refused connections and rejected messages since start (for metrics). */
  refusalStats(): Readonly<RefusalStats> {
    return this.refusals.stats;
  }

  /** Inbound connections open, and those of them still waiting for their hello. */
  inboundCounts(): { open: number; pending: number } {
    let pending = 0;
    for (const connection of this.inbound) if (connection.pending) pending++;
    return { open: this.inbound.size, pending };
  }

  /** The protocol versions this node speaks now, oldest first. */
  protocolRange(): ProtocolRange {
    return this.protocol;
  }

  /**
   * Each peer's protocol as the newest handshake with it (in either direction) told, kept after
   * the link closes: what this node last knew of that peer. Peers never heard from are absent.
   */
  peerProtocols(): ReadonlyMap<NodeId, PeerProtocol> {
    return this.protocols;
  }

  /**
   * Stops speaking versions below `version`: peers that speak only older ones are refused from
   * now on (the refusal tells them to upgrade), and links that speak an older one are closed
   * (they redial and offer `version` as the oldest). Never lowers the range.
   * @throws InvalidArgumentError if `version` is newer than this node speaks.
   */
  requireProtocolVersion(version: number): void {
    if (version > this.protocol.max) {
      throw new InvalidArgumentError(
        `protocol version ${version} is newer than this node's ${this.protocol.max}`,
      );
    }
    if (version <= this.protocol.min) return;
    this.protocol = { min: version, max: this.protocol.max };
    this.logger.info("speaking protocol versions", { min: version, max: this.protocol.max });
    for (const connection of this.outbound.values()) connection.resetIfBelow(version);
    for (const connection of this.inbound) {
      const linkVersion = connection.peerProtocol?.protocolVersion;
      if (linkVersion !== undefined && linkVersion < version) connection.close();
    }
  }

  /** True when the link to `peer` has completed its handshake. */
  isConnected(peer: NodeId): boolean {
    return this.outbound.get(peer)?.connected ?? false;
  }

  /** @inheritdoc */
  send(messages: readonly Message[]): void {
    if (this.closed) return;
    for (const m of messages) {
      // What the receiver checks, the sender asserts first: a message the peer would refuse
      // (and close the link for) is a bug here; drop it loudly instead of losing the link.
      const invalid = invalidMessageReason(m, { from: this.options.nodeId, to: m.to }, this.limits);
      if (invalid !== undefined) {
        this.logger.warn("bug: not sending a message its peer would refuse", {
          peer: m.to,
          type: m.type,
          reason: invalid,
        });
        this.snapshotNotSent(m);
        continue;
      }
      let connection = this.outbound.get(m.to);
      if (connection === undefined) {
        const address = this.peerAddresses.get(m.to);
        if (address === undefined) {
          this.logger.debug("message to an unknown peer dropped", { peer: m.to, type: m.type });
          this.reportUnreachable(m.to);
          this.snapshotNotSent(m);
          continue;
        }
        connection = this.connectionTo(m.to, address);
      }
      connection.enqueue(m);
    }
  }

  /** @inheritdoc */
  listen(handlers: Handlers): void {
    this.handlers = handlers;
  }

  /** @inheritdoc */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers = undefined;
    for (const connection of this.outbound.values()) connection.close();
    this.outbound.clear();
    for (const connection of this.inbound) connection.close();
    this.datagrams?.close();
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private connectionTo(peerId: NodeId, address: PeerAddress): PeerConnection {
    const connection = new PeerConnection({
      selfId: this.options.nodeId,
      peerId,
      clusterId: this.options.clusterId,
      address,
      clock: this.options.clock,
      random: this.options.random,
      logger: this.logger,
      limits: this.limits,
      dial: (to, onConnected) => this.dial(to, onConnected, peerId),
      reportUnreachable: (peer) => this.reportUnreachable(peer),
      reverseWriter: () => this.carryingBack.get(peerId),
      datagramWriter: () => this.datagrams?.writerFor(peerId),
      onConnected: (socket) => this.datagrams?.connected(peerId, "dialled", datagramKeyOf(socket)),
      onMessages: (messages) => {
        if (!this.closed) this.handlers?.onMessages(messages);
      },
      refusals: this.refusals,
      reportSnapshot: (peer, outcome) => this.handlers?.onSnapshotStatus(peer, outcome),
      onRemovedByPeer: (peer, reason) => this.removedListener?.(peer, reason),
      protocolRange: () => this.protocol,
      previousReleaseWire: this.previousReleaseWire,
      softwareVersion: this.softwareVersion,
      onPeerProtocol: (peer, protocol) => this.protocols.set(peer, protocol),
    });
    this.outbound.set(peerId, connection);
    return connection;
  }

  private dial(address: PeerAddress, onConnected: () => void, peerId: NodeId): Socket {
    const tls = this.options.tls;
    if (tls === undefined)
      return netConnect({ host: address.host, port: address.port }, onConnected);
    return tlsConnect(
      {
        host: address.host,
        port: address.port,
        cert: pem(tls.cert),
        key: pem(tls.key),
        ca: pem(tls.ca),
        ...(tls.peerServerName !== undefined
          ? { servername: tls.peerServerName(peerId) }
          : tls.serverName === undefined
            ? {}
            : { servername: tls.serverName }),
        minVersion: "TLSv1.2",
      },
      onConnected,
    );
  }

  private countReceived(messages: readonly Message[]): void {
    for (const m of messages) {
      let counters = this.received.get(m.from);
      if (counters === undefined) {
        counters = { messagesReceived: 0, snapshotsReceived: 0 };
        this.received.set(m.from, counters);
      }
      counters.messagesReceived++;
      if (m.type === MessageType.Snap) counters.snapshotsReceived++;
    }
  }

  /** A Snap message dropped before reaching a link still gets its (failed) outcome. */
  private snapshotNotSent(m: Message): void {
    if (m.type !== MessageType.Snap) return;
    queueMicrotask(() => this.handlers?.onSnapshotStatus(m.to, "failure"));
  }

  private reportUnreachable(peer: NodeId): void {
    this.handlers?.onUnreachable(peer);
  }

  private onInbound(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.inboundCounts().pending >= this.limits.maxPendingHandshakes) {
      // Strangers that have not said who they are yet share a small budget.
      this.refusals.refused(
        "connection",
        socket.remoteAddress ?? "?",
        "refused peer connection: too many connections waiting for their hello",
        {
          remote: `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`,
          max: this.limits.maxPendingHandshakes,
        },
      );
      socket.destroy();
      return;
    }
    const connection = new InboundConnection(socket, {
      selfId: this.options.nodeId,
      clusterId: this.options.clusterId,
      clock: this.options.clock,
      logger: this.logger,
      refusals: this.refusals,
      requireCertificateIdentity: this.options.tls !== undefined,
      limits: this.limits,
      isKnownPeer: (id) => this.peerAddresses.has(id),
      isRemovedPeer: (id) => this.removedPeers.has(id),
      protocolRange: () => this.protocol,
      previousReleaseWire: this.previousReleaseWire,
      softwareVersion: this.softwareVersion,
      onAccepted: (accepted) => {
        // A peer that reconnects leaves its old connection half-open at worst: close it.
        for (const other of this.inbound) {
          if (other !== accepted && other.peerId === accepted.peerId) other.close();
        }
        const peerId = accepted.peerId;
        if (peerId === undefined) return;
        if (accepted.peerProtocol !== undefined) this.protocols.set(peerId, accepted.peerProtocol);
        this.datagrams?.connected(peerId, "accepted", accepted.datagramKey());
        if (accepted.carriesBack) this.carryingBack.set(peerId, accepted);
        else this.carryingBack.delete(peerId);
        const link = this.outbound.get(peerId);
        link?.heard();
        // A second connection from a peer means it reset its link: it stopped hearing this node.
        if (this.acceptedFrom.has(peerId)) link?.peerRedialled();
        this.acceptedFrom.add(peerId);
      },
      onMessages: (messages) => {
        if (this.closed) return;
        // Liveness: any frame from a peer proves it hears and speaks (see link-liveness.ts).
        const from = messages[0]?.from;
        if (from !== undefined) this.outbound.get(from)?.heard();
        this.countReceived(messages);
        this.handlers?.onMessages(messages);
      },
      onClosed: (closed) => {
        this.inbound.delete(closed);
        if (closed.peerId !== undefined && this.carryingBack.get(closed.peerId) === closed) {
          this.carryingBack.delete(closed.peerId);
        }
      },
    });
    this.inbound.add(connection);
  }
}

/** node:tls wants a string or a Buffer; a Uint8Array is wrapped without copying. */
function pem(value: string | Uint8Array): string | Buffer {
  return typeof value === "string"
    ? value
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
