/**
 * The third path of a peer link: copies of raft's small control messages as UDP datagrams, beside
 * the two TCP connections of the pair (duplex-path.ts). Private to src/transport.
 *
 * Why: under random packet loss both TCP connections of a pair can be waiting out retransmission
 * timeouts at once (200 ms, doubling while retransmissions are lost too), and a redial whose SYN
 * is lost waits a whole second. Votes, heartbeats and their answers then arrive too late for an
 * election timeout of 250–500 ms: the fault runs of issue #17 had no leader for up to 2 s at
 * 40–49% loss although every node could reach every other. A datagram waits for nothing: each
 * copy gets through or not on its own. Each is written twice (the copies are dropped apart from
 * each other; the receiver takes the first and discards the second by its sequence number).
 * Which messages, and when, is the same policy as the reverse connection's (duplex-policy.ts):
 * votes always, heartbeats and their answers while the link is in doubt, so a healthy idle
 * cluster sends none.
 *
 * Security: with TLS, a datagram is tagged (HMAC-SHA256) with a key both ends derive from one of
 * the pair's authenticated TLS connections (RFC 5705 keying material), so only the peer that holds
 * that connection can make one; its sequence number is under the tag, so a replay is refused. A
 * key stays usable after its connection closes, until a new connection replaces it: under loss
 * the connections are reset and redialled, and that is when datagrams matter. Without TLS
 * (`--insecure`) datagrams are as unauthenticated as the connections. What arrives is checked
 * as a batch on a connection is (batch-check.ts), and only the control types may come this way;
 * nothing a datagram holds can throw out of the handler.
 *
 * UDP listens on the peer port's number, at the peer listen host. If it cannot bind, the node
 * logs it once and runs on its TCP connections alone.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import { isIP, type Socket } from "node:net";
import { TLSSocket } from "node:tls";
import type { Logger } from "../common/logger.js";
import type { Message, NodeId } from "../raft/types.js";
import type { PeerAddress } from "./address.js";
import { decodeBatchFrame } from "./batch-codec.js";
import { checkBatch, ProtocolViolation } from "./batch-check.js";
import { FRAME_HEADER_BYTES } from "./codec.js";
import {
  DATAGRAM_KEY_BYTES,
  DATAGRAM_KEY_LABEL,
  DatagramKey,
  datagramBody,
  encodeDatagram,
  readDatagramHeader,
} from "./datagram-wire.js";
import { isDuplexType, type ReverseWriter } from "./duplex-path.js";
import type { RefusalLog } from "./refusal-log.js";
import type { MessageBounds } from "./validate-message.js";

/** The exporter context: none beyond the label (the same at both ends is what matters). */
const NO_CONTEXT = Buffer.alloc(0);

/** Copies of each datagram written (see the module comment). */
const COPIES = 2;

/** Counters of a node's datagrams, for metrics and tests. */
export interface DatagramStats {
  /** Datagrams written (each copy counted). */
  datagramsSent: number;
  /** Datagrams whose messages reached raft. */
  datagramsReceived: number;
  /** Second copies and replays: a sequence number at or below one already taken. */
  datagramsRepeated: number;
  /**
   * Datagrams whose tag did not check out, or with no key to check it: made with a key this node
   * has since replaced (normal after a reconnect), or forged.
   */
  datagramsUnauthenticated: number;
  /** Malformed datagrams and batches a correct peer would not send (also counted as refusals). */
  datagramsRefused: number;
}

/** Options of a {@link DatagramChannel}. */
export interface DatagramChannelOptions {
  readonly selfId: NodeId;
  readonly clusterId: string;
  /** True when the peer connections use TLS: every datagram must then be tagged. */
  readonly secure: boolean;
  /** Random per process: lets a receiver tell a restarted sender's plain-text sequence apart. */
  readonly epoch: number;
  readonly bounds: MessageBounds;
  readonly logger: Logger;
  readonly refusals: RefusalLog;
  /** Where a peer is (its UDP port is its peer port); undefined for a node that is not a peer. */
  readonly peerAddress: (id: NodeId) => PeerAddress | undefined;
  /** Control messages a peer sent by datagram, checked. */
  readonly onMessages: (from: NodeId, messages: readonly Message[]) => void;
}

/** One key (or, without TLS, one plain-text sequence) of one peer, both directions. */
interface KeyState {
  readonly key: Buffer | undefined;
  /** The last sequence number this node sent under it. */
  sent: number;
  /** The highest sequence number taken from the peer under it. */
  taken: number;
  /** The sender's epoch of `taken` (plain text only: a tagged sequence never restarts). */
  epoch: number;
}

/** A peer's keys: of the connection this node dialled to it, and of the one it dialled here. */
interface PeerKeys {
  dialled?: KeyState;
  accepted?: KeyState;
  /** Without TLS: the one plain-text sequence. */
  plain?: KeyState;
}

/**
 * The datagram key of a TLS connection, the same at both ends; undefined for a plain TCP
 * connection or one whose session cannot export keying material. Throws nothing.
 */
export function datagramKeyOf(socket: Socket): Buffer | undefined {
  if (!(socket instanceof TLSSocket)) return undefined;
  try {
    return socket.exportKeyingMaterial(DATAGRAM_KEY_BYTES, DATAGRAM_KEY_LABEL, NO_CONTEXT);
  } catch {
    return undefined;
  }
}

/** A node's UDP socket for its peers' datagrams, and their keys. See the module comment. */
export class DatagramChannel {
  readonly stats: DatagramStats = {
    datagramsSent: 0,
    datagramsReceived: 0,
    datagramsRepeated: 0,
    datagramsUnauthenticated: 0,
    datagramsRefused: 0,
  };
  readonly #options: DatagramChannelOptions;
  readonly #keys = new Map<NodeId, PeerKeys>();
  readonly #writers = new Map<NodeId, ReverseWriter>();
  #socket: UdpSocket | undefined;
  #closed = false;

  constructor(options: DatagramChannelOptions) {
    this.#options = options;
  }

  /**
   * Binds UDP at `host`:`port` (the peer listener's). Resolves when bound, or when binding
   * failed: the node then goes on without datagrams, and says so once. Throws nothing.
   */
  async open(host: string, port: number): Promise<void> {
    if (this.#closed || this.#socket !== undefined) return;
    const socket = createSocket({ type: isIP(host) === 6 ? "udp6" : "udp4" });
    const bound = await new Promise<boolean>((resolve) => {
      socket.once("error", (error) => {
        this.#options.logger.warn(
          "peer datagrams off: cannot bind UDP on the peer port; peers are reached over TCP only",
          { host, port, error: error.message },
        );
        resolve(false);
      });
      socket.bind({ address: host, port, exclusive: true }, () => resolve(true));
    });
    if (!bound || this.#closed) {
      socket.close();
      return;
    }
    socket.removeAllListeners("error");
    socket.on("error", (error) => {
      this.#options.logger.debug("peer datagram socket error", { error: error.message });
    });
    socket.on("message", (datagram, remote) => this.#receive(datagram, remote));
    this.#socket = socket;
  }

  /** True once bound. */
  get bound(): boolean {
    return this.#socket !== undefined;
  }

  /**
   * A connection to (`dialled`) or from (`accepted`) `peer` completed its handshake: its key
   * ({@link datagramKeyOf}) replaces the one of the previous connection that way. Throws nothing.
   */
  connected(peer: NodeId, side: "dialled" | "accepted", key: Buffer | undefined): void {
    if (!this.#options.secure || key === undefined) return;
    const keys = this.#peerKeys(peer);
    keys[side] = { key, sent: 0, taken: 0, epoch: 0 };
  }

  /** The way to send `peer` datagrams, when there is one (bound, keyed, address known). */
  writerFor(peer: NodeId): ReverseWriter | undefined {
    if (this.#socket === undefined) return undefined;
    if (this.#options.secure) {
      const keys = this.#keys.get(peer);
      if (keys?.dialled === undefined && keys?.accepted === undefined) return undefined;
    }
    let writer = this.#writers.get(peer);
    if (writer === undefined) {
      writer = { writeFrame: (frame) => this.#send(peer, frame) };
      this.#writers.set(peer, writer);
    }
    return writer;
  }

  /** Forgets `peer`'s keys (it left the cluster). */
  forget(peer: NodeId): void {
    this.#keys.delete(peer);
    this.#writers.delete(peer);
  }

  /** Closes the socket. */
  close(): void {
    this.#closed = true;
    this.#socket?.close();
    this.#socket = undefined;
    this.#keys.clear();
    this.#writers.clear();
  }

  #peerKeys(peer: NodeId): PeerKeys {
    let keys = this.#keys.get(peer);
    if (keys === undefined) {
      keys = {};
      this.#keys.set(peer, keys);
    }
    return keys;
  }

  /** Writes `frame` (a batch frame with its length prefix) to `peer`; false if it cannot. */
  #send(peer: NodeId, frame: Uint8Array): boolean {
    const socket = this.#socket;
    const address = this.#options.peerAddress(peer);
    if (socket === undefined || address === undefined) return false;
    const keys = this.#peerKeys(peer);
    let which: DatagramKey;
    let state: KeyState;
    if (!this.#options.secure) {
      which = DatagramKey.None;
      state = keys.plain ??= { key: undefined, sent: 0, taken: 0, epoch: 0 };
    } else if (keys.dialled !== undefined) {
      which = DatagramKey.SenderDialled;
      state = keys.dialled;
    } else if (keys.accepted !== undefined) {
      which = DatagramKey.ReceiverDialled;
      state = keys.accepted;
    } else {
      return false;
    }
    const datagram = encodeDatagram(
      {
        key: which,
        senderId: this.#options.selfId,
        epoch: this.#options.epoch,
        sequence: state.sent + 1,
      },
      frame.subarray(FRAME_HEADER_BYTES),
      state.key,
    );
    if (datagram === undefined) return false;
    state.sent++;
    for (let i = 0; i < COPIES; i++) {
      // Errors (no route, a name that does not resolve) come to the callback: a lost datagram.
      socket.send(datagram, address.port, address.host, () => {});
    }
    this.stats.datagramsSent += COPIES;
    return true;
  }

  #receive(datagram: Buffer, remote: RemoteInfo): void {
    if (this.#closed) return;
    try {
      this.#take(datagram);
    } catch (error) {
      this.stats.datagramsRefused++;
      this.#options.refusals.refused("message", remote.address, "refused a peer datagram", {
        remote: `${remote.address}:${remote.port}`,
        reason: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /**
   * Checks one datagram and hands its messages on.
   * @throws on input a correct peer does not send (caught and counted by the caller).
   */
  #take(datagram: Buffer): void {
    const { selfId, secure, clusterId, bounds } = this.#options;
    const header = readDatagramHeader(datagram);
    const peer = header.senderId;
    if (peer === selfId || this.#options.peerAddress(peer) === undefined) {
      throw new ProtocolViolation(`a datagram from node ${peer}, not a peer`);
    }
    if (secure !== (header.key !== DatagramKey.None)) {
      throw new ProtocolViolation(
        secure ? "an unauthenticated datagram" : "an authenticated datagram on an insecure node",
      );
    }
    const keys = this.#peerKeys(peer);
    // The sender's "connection I dialled" is the one this node accepted, and the other way round.
    const state =
      header.key === DatagramKey.None
        ? (keys.plain ??= { key: undefined, sent: 0, taken: 0, epoch: header.epoch })
        : header.key === DatagramKey.SenderDialled
          ? keys.accepted
          : keys.dialled;
    if (state === undefined) {
      this.stats.datagramsUnauthenticated++;
      return;
    }
    if (header.key === DatagramKey.None && header.epoch !== state.epoch) {
      // A restarted sender (plain text only; a tagged sequence lives and dies with its key).
      state.epoch = header.epoch;
      state.taken = 0;
    }
    if (header.sequence <= state.taken) {
      this.stats.datagramsRepeated++;
      return;
    }
    const body = datagramBody(datagram, header, state.key);
    if (body === undefined) {
      this.stats.datagramsUnauthenticated++;
      return;
    }
    state.taken = header.sequence;
    const messages = checkBatch(
      decodeBatchFrame(body),
      { clusterId, peerId: peer, selfId },
      bounds,
    );
    for (const m of messages) {
      if (!isDuplexType(m.type)) {
        throw new ProtocolViolation(`message type ${m.type} in a datagram`);
      }
    }
    this.stats.datagramsReceived++;
    this.#options.onMessages(peer, messages);
  }
}
