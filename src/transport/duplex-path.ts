/**
 * The second path of a peer link (protocol 3, `DUPLEX_PROTOCOL_VERSION`): raft's small control
 * messages to a peer also go back on the connection that peer dialled to this node, besides the
 * connection this node dialled to it. Private to src/transport.
 *
 * Why: each node sends on the connection it dialled, so a request arrives on one TCP connection
 * and its answer leaves on the other. Under packet loss the answer's connection is often waiting
 * out a retransmission timeout (200 ms doubling to seconds while retransmissions are lost too),
 * while the request's connection has just delivered data: the fault runs of issue #17 showed
 * pre-vote grants arriving seconds after the requests, elections timing out and repeating, and no
 * leader for up to 3.3 s at 20–45 % loss. A copy on the other connection arrives as soon as
 * either connection delivers.
 *
 * Which messages: votes and pre-votes, heartbeats, and the answers to them and to appends. They
 * are small (no entries), and the core treats a duplicate of each as it treats the first (a
 * repeated vote is granted to the same candidate again, a tally counts a voter once, a
 * heartbeat's commit only rises, a read's acknowledgement is kept per voter, an append answer
 * at or below the match, or a rejection the leader already probed back from, changes nothing).
 * Append answers go both ways because a leader counts them toward check-quorum's activity and
 * commits with them: stuck on one connection, they made a leader with a working majority step
 * down. Appends and snapshots are not duplicated: they are large, and they are what the
 * retransmitting connection already carries. Which of these types are copied at a given moment
 * is duplex-policy.ts's choice: heartbeats and their answers only while the link is in doubt.
 *
 * A copy is never queued behind a stuck socket: when the reverse connection has unsent bytes the
 * copy is dropped (the other path has the message, and Raft resends what matters).
 */
import { type Message, MessageType, type NodeId } from "../raft/types.js";
import { encodeBatchFrame } from "./batch-codec.js";

/** Indexed by message type: true for the types that travel on both paths. */
const DUPLEX_TYPES: readonly boolean[] = (() => {
  const types: boolean[] = [];
  for (const type of [
    MessageType.Vote,
    MessageType.VoteResp,
    MessageType.PreVote,
    MessageType.PreVoteResp,
    MessageType.Heartbeat,
    MessageType.HeartbeatResp,
    MessageType.AppResp,
  ]) {
    types[type] = true;
  }
  return types;
})();

/** True for the message types sent on both paths of a link (see the module comment). */
export function isDuplexType(type: MessageType): boolean {
  return DUPLEX_TYPES[type] === true;
}

/** The connection a peer dialled to this node, as a way back to that peer. */
export interface ReverseWriter {
  /**
   * Writes one encoded frame (with its length prefix) to the peer. False when it was not
   * written: the connection is closing, or it still holds unsent bytes. Throws nothing.
   */
  writeFrame(frame: Uint8Array): boolean;
}

/** Counters of the copies sent on the reverse path of one link, for metrics. */
export interface ReversePathStats {
  /** Messages written back on the connection the peer dialled. */
  messagesSent: number;
  /** Copies not written: the reverse connection was backed up or closing. */
  messagesDropped: number;
  framesSent: number;
  bytesSent: number;
}

/** Options of a {@link ReversePath}. */
export interface ReversePathOptions {
  readonly clusterId: string;
  readonly selfId: NodeId;
  readonly peerId: NodeId;
  /** The peer's current connection to this node, when it speaks protocol 3 or later. */
  readonly writer: () => ReverseWriter | undefined;
  /**
   * Whether a control message of `type` is copied now (duplex-policy.ts); default: always.
   * Messages sent on the reverse path alone ({@link ReversePath.send}) are not asked about.
   */
  readonly copies?: (type: MessageType) => boolean;
}

/** Sends the copies of one link's control messages back on the connection its peer dialled. */
export class ReversePath {
  readonly stats: ReversePathStats = {
    messagesSent: 0,
    messagesDropped: 0,
    framesSent: 0,
    bytesSent: 0,
  };
  /** Copies waiting for the end of this event-loop turn (then encoded into one frame). */
  private pending: Message[] = [];
  private flushScheduled = false;

  private readonly copies: (type: MessageType) => boolean;

  constructor(private readonly options: ReversePathOptions) {
    this.copies = options.copies ?? (() => true);
  }

  /** True when the peer's connection to this node can carry messages back. */
  get available(): boolean {
    return this.options.writer() !== undefined;
  }

  /**
   * `messages` were just encoded into `frame` for the connection this node dialled: those of
   * their control messages the policy copies now go back on the reverse path too. A frame of
   * copied messages only is written as it is (encoded once); otherwise the copied messages are
   * queued and encoded together at the end of the turn. Throws nothing.
   */
  duplicate(messages: readonly Message[], frame: Uint8Array): void {
    const writer = this.options.writer();
    if (writer === undefined) return;
    // The policy is asked once per message: the copies are queued as they are found, and taken
    // back out when they are the whole frame, which then goes as it is.
    const queuedBefore = this.pending.length;
    for (const m of messages) if (isDuplexType(m.type) && this.copies(m.type)) this.pending.push(m);
    const copied = this.pending.length - queuedBefore;
    if (copied === 0) return;
    if (copied === messages.length) {
      this.pending.length = queuedBefore;
      this.write(writer, frame, copied);
      return;
    }
    this.scheduleFlush();
  }

  /**
   * Sends `m` on the reverse path alone (the connection this node dialled cannot carry it now).
   * True if it was taken (a control message and a reverse path exists). Throws nothing.
   */
  send(m: Message): boolean {
    if (!isDuplexType(m.type) || this.options.writer() === undefined) return false;
    this.queue(m);
    return true;
  }

  /** Forgets the copies not yet written (the link is closing). */
  clear(): void {
    this.pending = [];
  }

  private queue(m: Message): void {
    this.pending.push(m);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // After the current turn, as the outbound connection's flush: what one turn sends to this
    // peer goes in one frame.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const messages = this.pending;
    if (messages.length === 0) return;
    this.pending = [];
    const writer = this.options.writer();
    if (writer === undefined) {
      this.stats.messagesDropped += messages.length;
      return;
    }
    const { clusterId, selfId, peerId } = this.options;
    this.write(
      writer,
      encodeBatchFrame({ clusterId, from: selfId, to: peerId, messages }),
      messages.length,
    );
  }

  private write(writer: ReverseWriter, frame: Uint8Array, count: number): void {
    if (!writer.writeFrame(frame)) {
      this.stats.messagesDropped += count;
      return;
    }
    this.stats.messagesSent += count;
    this.stats.framesSent++;
    this.stats.bytesSent += frame.length;
  }
}
