/**
 * The cluster's protocol version: from which log entry on every member understands what a newer
 * protocol brings, so that the cluster may use it. Protocol 2 brings forwarded proposals: a
 * follower hands a write to the leader over the peer transport in the `0xf0` envelope
 * (`forwarded-proposal.ts`), and the envelope stays in the log. A node of the release before
 * would hand that entry to its state machine, fail the command where the others apply it, and
 * its replica would diverge. So nothing is forwarded, and no leader appends a forwarded proposal,
 * until every member is known to speak 2.
 *
 * How the cluster knows: a replicated fact, not each node's own view. The leader learns each
 * member's newest protocol from the peer handshakes (it dials every member and hears from each,
 * so it alone sees them all; followers do not talk to each other), and once every member of the
 * configuration, learners included (they apply the log too), speaks 2 it appends a protocol entry
 * (`0xf1`, the version) to the log. Every member applies it at the same index, so from that entry
 * on every member knows, whoever leads later: a new leader has every committed entry. Nodes keep
 * the version they applied (the composition stores it beside the member list), so it survives a
 * snapshot that compacted the entry away; and a leader appends it again in each term and after
 * each membership change, so a member that joined through a snapshot learns it too. As etcd's
 * cluster version, it only rises: a node of an older release is refused by the peer transport
 * from then on (see `TcpTransport.requireProtocolVersion`), and a node that has applied it
 * refuses to start as an older release.
 *
 * Before the entry (the gate closed) the runtime behaves as with `forwardProposals: false`: a
 * follower refuses writes with NOT_LEADER and the API forwards them over HTTP. A leader drops a
 * forwarded proposal that reaches it while the gate is closed (only a follower that applied the
 * entry before the leader did could send one; see {@link ProtocolGate.acceptsForwarded}).
 *
 * | bytes | what                                   |
 * | ----- | -------------------------------------- |
 * | 0     | 0xf1 (no state machine command starts with it; see `cluster/namespace.ts`) |
 * | 1 – 2 | the cluster's protocol version, big-endian |
 */
import type { NodeId } from "../raft/types.js";

/** The first protocol version whose nodes understand forwarded proposals. */
export const FORWARDED_PROPOSALS_PROTOCOL_VERSION = 2;

/**
 * The first protocol version whose nodes all apply the batch commands (`submitTasks`,
 * `agentReports`): they came in the same release as protocol 2 (0.1.0 knows neither), so a
 * cluster at 2 has no member that would refuse a batch the others apply. Agents batch their
 * reports only from then on.
 */
export const BATCH_COMMANDS_PROTOCOL_VERSION = 2;

/** The first byte of a protocol entry. */
export const PROTOCOL_ENTRY_BYTE = 0xf1;

/** Bytes of a protocol entry. */
const PROTOCOL_ENTRY_BYTES = 3;

/** The newest protocol version a protocol entry can carry. */
const MAX_ENTRY_VERSION = 0xffff;

/**
 * The protocol entry that raises the cluster to `version`.
 * @throws RangeError if `version` is not in 1..65535 (a bug of the caller).
 */
export function encodeProtocolEntry(version: number): Uint8Array {
  if (!Number.isInteger(version) || version < 1 || version > MAX_ENTRY_VERSION) {
    throw new RangeError(`protocol version ${version} is out of range`);
  }
  return new Uint8Array([PROTOCOL_ENTRY_BYTE, version >>> 8, version & 0xff]);
}

/** The version in a protocol entry, or undefined when `data` is not one. Allocates nothing. */
export function protocolEntryVersion(data: Uint8Array): number | undefined {
  if (data.byteLength !== PROTOCOL_ENTRY_BYTES || data[0] !== PROTOCOL_ENTRY_BYTE) return undefined;
  return ((data[1] as number) << 8) | (data[2] as number);
}

/** Options of a {@link ProtocolGate}. */
export interface ProtocolGateOptions {
  /**
   * The newest protocol this node speaks (default {@link FORWARDED_PROPOSALS_PROTOCOL_VERSION}).
   * 1 makes the node behave as the release before: it never forwards and hands every entry's
   * bytes to its state machine as they are (the upgrade tests' stand-in for that release).
   */
  readonly nodeVersion?: number;
  /** The cluster's version this node applied before (kept across restarts). Default 1. */
  readonly clusterVersion?: number;
  /**
   * Called when an applied protocol entry raises the cluster's version (inside the apply loop:
   * keep it quick; store the version, tighten the transport).
   */
  readonly onClusterVersion?: (version: number, index: number) => void;
}

/**
 * What this node knows of the cluster's protocol version, and what the runtime may do with it.
 * Owned by one `RaftNode` (it applies the protocol entries); read by the API and the publisher.
 */
export class ProtocolGate {
  readonly #nodeVersion: number;
  readonly #onClusterVersion: ((version: number, index: number) => void) | undefined;
  #clusterVersion: number;
  /** The index of a protocol entry of version >= 2 this node has in its log, until applied. */
  #openingIndex: number | undefined;
  #openedAtIndex: number | undefined;

  /** @throws RangeError if a version is below 1. */
  constructor(options: ProtocolGateOptions = {}) {
    this.#nodeVersion = options.nodeVersion ?? FORWARDED_PROPOSALS_PROTOCOL_VERSION;
    this.#clusterVersion = options.clusterVersion ?? 1;
    if (this.#nodeVersion < 1 || this.#clusterVersion < 1) {
      throw new RangeError("protocol versions start at 1");
    }
    this.#onClusterVersion = options.onClusterVersion;
  }

  /** The newest protocol this node speaks. */
  get nodeVersion(): number {
    return this.#nodeVersion;
  }

  /** The cluster's protocol version as far as this node has applied the log. */
  get clusterVersion(): number {
    return this.#clusterVersion;
  }

  /** The log index at which this node applied the entry that opened forwarding, if it did since it started. */
  get openedAtIndex(): number | undefined {
    return this.#openedAtIndex;
  }

  /** True when this node reads the runtime's envelopes (`0xf0`, `0xf1`): not the previous release. */
  get readsEnvelopes(): boolean {
    return this.#nodeVersion >= FORWARDED_PROPOSALS_PROTOCOL_VERSION;
  }

  /** True when this node may forward proposals, and as leader append forwarded ones. */
  get forwarding(): boolean {
    return this.readsEnvelopes && this.#clusterVersion >= FORWARDED_PROPOSALS_PROTOCOL_VERSION;
  }

  /**
   * True when a leader whose commit index is `commitIndex` may append a forwarded proposal: the
   * gate is open, or the entry that opens it is committed and only waits for this node's apply (a
   * follower may apply it, and forward, before its leader has applied it).
   */
  acceptsForwarded(commitIndex: number): boolean {
    if (this.forwarding) return true;
    return (
      this.readsEnvelopes && this.#openingIndex !== undefined && this.#openingIndex <= commitIndex
    );
  }

  /** The runtime stored a log entry with `data` at `index`. Allocates nothing. */
  onStored(index: number, data: Uint8Array): void {
    const version = protocolEntryVersion(data);
    if (version === undefined || version < FORWARDED_PROPOSALS_PROTOCOL_VERSION) return;
    if (this.#openingIndex === undefined || index < this.#openingIndex) this.#openingIndex = index;
  }

  /** The runtime applied a protocol entry of `version` at `index`. Throws nothing. */
  onApplied(version: number, index: number): void {
    if (this.#openingIndex !== undefined && this.#openingIndex <= index) {
      this.#openingIndex = undefined;
    }
    if (version <= this.#clusterVersion) return;
    const wasForwarding = this.forwarding;
    this.#clusterVersion = version;
    if (!wasForwarding && this.forwarding) this.#openedAtIndex = index;
    this.#onClusterVersion?.(version, index);
  }
}

/** What {@link protocolToPublish} decides from. */
export interface PublishInput {
  readonly gate: ProtocolGate;
  /** True while this node leads. */
  readonly leader: boolean;
  readonly selfId: NodeId;
  /** Every member of the configuration (both halves of a joint one, learners included). */
  readonly members: readonly NodeId[];
  /** The newest protocol member `id` was last known to speak, or undefined if never heard. */
  readonly peerVersion: (id: NodeId) => number | undefined;
}

/**
 * The version a leader should append a protocol entry for now, or undefined: the lowest newest
 * version among the members (this node included) when that is above the cluster's, as long as
 * every member was heard from. A node of the previous release never publishes. Throws nothing.
 */
export function protocolToPublish(input: PublishInput): number | undefined {
  const { gate } = input;
  if (!input.leader || !gate.readsEnvelopes) return undefined;
  let lowest = gate.nodeVersion;
  for (const id of input.members) {
    if (id === input.selfId) continue;
    const version = input.peerVersion(id);
    if (version === undefined) return undefined;
    lowest = Math.min(lowest, version);
  }
  return lowest > gate.clusterVersion ? lowest : undefined;
}
