/**
 * The leader's side of the cluster protocol version (`protocol-gate.ts`): appends the protocol
 * entry once every member is known to speak a newer version, and again in each new term and
 * after each membership change while the cluster is on a version that needs it known (so a member
 * that joined through a snapshot, or lost what it stored, learns it). Checked on a timer by the
 * composition; one proposal in flight at most.
 */
import type { Logger } from "../common/logger.js";
import { confMembers, type ConfState, type NodeId } from "../raft/types.js";
import {
  encodeProtocolEntry,
  FORWARDED_PROPOSALS_PROTOCOL_VERSION,
  type ProtocolGate,
  protocolToPublish,
} from "./protocol-gate.js";

/** What the publisher needs of the runtime (a `RaftNode`). */
export interface PublishingNode {
  readonly id: NodeId;
  readonly isLeader: boolean;
  /** The core's live view (undefined once stopped): cheap, unlike a full status. */
  inspect(): { readonly term: number; confState(): ConfState } | undefined;
  propose(command: Uint8Array, options: { readonly leaderOnly: true }): Promise<unknown>;
}

/** Options of a {@link ProtocolPublisher}. */
export interface ProtocolPublisherOptions {
  readonly gate: ProtocolGate;
  readonly node: PublishingNode;
  /** The newest protocol member `id` was last known to speak (from peer handshakes). */
  readonly peerVersion: (id: NodeId) => number | undefined;
  readonly logger: Logger;
}

/** Appends protocol entries when due; see the module comment. */
export class ProtocolPublisher {
  readonly #options: ProtocolPublisherOptions;
  #inFlight = false;
  /** The term and configuration of the newest entry this node appended and saw applied. */
  #publishedFor: string | undefined;

  constructor(options: ProtocolPublisherOptions) {
    this.#options = options;
  }

  /** Appends a protocol entry if one is due (see the module comment). Throws nothing. */
  check(): void {
    const { gate, node, logger } = this.#options;
    if (this.#inFlight || !node.isLeader) return;
    // Checked every second on the leader: the live view, not status() (which copies every
    // peer's progress; it was a tenth of an idle leader's allocation).
    const core = node.inspect();
    if (core === undefined) return;
    const term = core.term;
    const members = confMembers(core.confState());
    const raised = protocolToPublish({
      gate,
      leader: true,
      selfId: node.id,
      members,
      peerVersion: this.#options.peerVersion,
    });
    const key = `${term}:${members.join(",")}`;
    const version =
      raised ??
      (gate.clusterVersion >= FORWARDED_PROPOSALS_PROTOCOL_VERSION && this.#publishedFor !== key
        ? gate.clusterVersion
        : undefined);
    if (version === undefined) return;
    this.#inFlight = true;
    node.propose(encodeProtocolEntry(version), { leaderOnly: true }).then(
      () => {
        this.#inFlight = false;
        this.#publishedFor = key;
        if (raised !== undefined) {
          logger.info("cluster protocol version raised: every member speaks it", {
            version,
            members,
          });
        }
      },
      (error: unknown) => {
        this.#inFlight = false;
        logger.debug("protocol entry not appended; will retry", {
          version,
          error: error instanceof Error ? error.message : String(error),
        });
      },
    );
  }
}
