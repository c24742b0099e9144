/**
 * Membership in a real node: what the composition does when the configuration changes, and how
 * a new node joins a running cluster.
 *
 * Every node applies every membership change (`RaftNode`'s `onConfChange`); an added member's
 * addresses travel in the change's context, so each node records them in its member directory
 * (`members.json`) and gives the peer to its transport, and a removed member is forgotten by
 * both. A node that learns of a member whose addresses it does not know (it joined through a
 * snapshot taken after that member was added) asks a known member's API for the member list.
 *
 * Joining (`node start --join URL`): the node starts with an empty configuration, learns the
 * members' addresses from the cluster, asks it (through the API, forwarded to the leader) to add
 * it as a learner, and is then sent a snapshot by the leader. Until it has one, it drops appends
 * that would hand it the log from entry 1: the cluster's bootstrap configuration is in the
 * index-0 snapshot, not in the log, so replaying the log from the start would give it a wrong
 * configuration. Once the leader has compacted entry 1 away (the runtime does when a member is
 * added), it sends the snapshot instead.
 */
import type { ClusterConfig } from "../../client/index.js";
import { ConflictError, UnavailableError, isBlixardError } from "../../common/errors.js";
import { decodeMemberContext } from "../../api/member-directory.js";
import type { MemberAddresses } from "../../api/service.js";
import {
  ConfChangeType,
  MessageType,
  type ConfChange,
  type ConfState,
  type NodeId,
} from "../../raft/types.js";
import { formatAddress, parsePeerAddress } from "../../transport/address.js";
import type { TcpTransport } from "../../transport/tcp-transport.js";
import type { Transport } from "../../transport/transport.js";
import type { JsonLogger } from "../log.js";
import type { PersistentMemberDirectory } from "./member-store.js";

/** How a node's own clients (membership, the agent) reach the API: the CA and its certificate. */
export interface NodeClientTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** The ids a configuration names (both halves of a joint one, learners included). */
export function confStateIds(c: ConfState): NodeId[] {
  return [...new Set([...c.voters, ...c.votersOutgoing, ...c.learners, ...c.learnersNext])];
}

/** Options of {@link MembershipWiring}. */
export interface MembershipWiringOptions {
  readonly selfId: NodeId;
  readonly directory: PersistentMemberDirectory;
  readonly transport: TcpTransport;
  readonly log: JsonLogger;
  /** The configuration the node starts with (from its log store). */
  readonly initialConfState: ConfState;
  /** Extra API URLs to ask for the member list (the `--join` endpoints). */
  readonly seedEndpoints?: readonly string[];
  /** Credentials of the node's own API clients. */
  readonly clientTls?: NodeClientTls;
  /** Called when this node applies its own removal. */
  readonly onRemoved?: () => void;
}

/** Keeps the member directory and the transport in step with the applied configuration. */
export class MembershipWiring {
  readonly #options: MembershipWiringOptions;
  readonly #log: JsonLogger;
  /** True while the node is in no configuration (joining, before its snapshot). */
  #outside: boolean;
  #latest: ConfState;
  #refreshing = false;
  #closed = false;

  constructor(options: MembershipWiringOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#latest = options.initialConfState;
    this.#outside = confStateIds(options.initialConfState).length === 0;
  }

  /** True while this node is in no configuration. */
  get outside(): boolean {
    return this.#outside;
  }

  /** Gives every known member but this node to the transport. */
  seedTransport(): void {
    for (const [id, addresses] of this.#options.directory.entries()) this.#addPeer(id, addresses);
  }

  /** `RaftNode`'s `onConfChange`: see the module comment. Throws nothing. */
  onConfChange(change: ConfChange | undefined, confState: ConfState): void {
    this.#latest = confState;
    this.#outside = confStateIds(confState).length === 0;
    const { directory, selfId, transport } = this.#options;
    if (change !== undefined) {
      const adds = change.changes.filter((c) => c.type !== ConfChangeType.RemoveNode);
      const addresses = decodeMemberContext(change.context);
      // One context per change: it names the member only when one member is added.
      const added = adds.length === 1 ? adds[0]?.nodeId : undefined;
      if (added !== undefined && addresses !== undefined) {
        directory.set(added, addresses);
        this.#addPeer(added, addresses);
      }
      for (const c of change.changes) {
        if (c.type !== ConfChangeType.RemoveNode) continue;
        directory.delete(c.nodeId);
        if (c.nodeId === selfId) {
          this.#options.onRemoved?.();
        } else {
          transport.removePeer(c.nodeId, { removed: true });
          this.#log.info("member removed", { member: c.nodeId });
        }
      }
    }
    const unknown: NodeId[] = [];
    for (const id of confStateIds(confState)) {
      const addresses = directory.get(id);
      if (addresses === undefined) {
        if (id !== selfId) unknown.push(id);
      } else {
        this.#addPeer(id, addresses);
      }
    }
    if (unknown.length > 0) void this.#refresh(unknown);
  }

  /** Stops background refreshes. */
  close(): void {
    this.#closed = true;
  }

  /**
   * The transport the runtime should use: `transport`, except that while this node is in no
   * configuration it drops appends starting at entry 1 (see the module comment).
   */
  gate(transport: Transport): Transport {
    let logged = false;
    return {
      send: (messages) => transport.send(messages),
      close: () => transport.close(),
      listen: (handlers) =>
        transport.listen({
          onUnreachable: handlers.onUnreachable,
          onSnapshotStatus: handlers.onSnapshotStatus,
          onMessages: (messages) => {
            if (!this.#outside) {
              handlers.onMessages(messages);
              return;
            }
            const kept = messages.filter((m) => m.type !== MessageType.App || m.index !== 0);
            if (kept.length < messages.length && !logged) {
              logged = true;
              this.#log.info("waiting for a snapshot from the leader (not in a configuration yet)");
            }
            if (kept.length > 0) handlers.onMessages(kept);
          },
        }),
    };
  }

  #addPeer(id: NodeId, addresses: MemberAddresses): void {
    if (id === this.#options.selfId) return;
    const transport = this.#options.transport;
    try {
      const wanted = formatAddress(parsePeerAddress(addresses.raftAddress));
      const known = transport.peers().get(id);
      if (known !== undefined && formatAddress(known) === wanted) return;
      transport.addPeer(id, addresses.raftAddress);
      this.#log.info("peer added", { member: id, raftAddress: wanted });
    } catch (error) {
      this.#log.warn("bad peer address", {
        member: id,
        raftAddress: addresses.raftAddress,
        error: (error as Error).message,
      });
    }
  }

  /** Asks known members' APIs for the addresses of `ids`. One refresh at a time. */
  async #refresh(ids: readonly NodeId[]): Promise<void> {
    if (this.#refreshing || this.#closed) return;
    this.#refreshing = true;
    const { directory, selfId } = this.#options;
    const endpoints = [
      ...directory
        .entries()
        .filter(([id]) => id !== selfId)
        .map(([, a]) => a.apiAddress),
      ...(this.#options.seedEndpoints ?? []),
    ].filter((e) => URL.canParse(e));
    try {
      if (endpoints.length === 0) return;
      this.#log.info("asking the cluster for member addresses", { members: ids });
      const { BlixardClient } = await loadClient();
      const client = new BlixardClient({
        endpoints,
        timeoutMs: 5000,
        ...this.#options.clientTls,
      });
      const { members } = await client.members();
      if (this.#closed) return;
      for (const m of members) {
        if (m.raftAddress === undefined || m.apiAddress === undefined) continue;
        if (directory.get(m.id) !== undefined) continue;
        directory.set(m.id, { raftAddress: m.raftAddress, apiAddress: m.apiAddress });
      }
    } catch (error) {
      this.#log.warn("cannot fetch member addresses", { error: (error as Error).message });
    } finally {
      this.#refreshing = false;
    }
    if (!this.#closed) {
      for (const id of confStateIds(this.#latest)) {
        const addresses = directory.get(id);
        if (addresses !== undefined) this.#addPeer(id, addresses);
      }
    }
  }
}

/**
 * Learns the cluster's members from `endpoints` and records their addresses in `directory`.
 * @throws UnavailableError (or the client's error) if no endpoint answers.
 */
export async function learnMembers(
  endpoints: readonly string[],
  directory: PersistentMemberDirectory,
  selfId: NodeId,
  clientTls: NodeClientTls = {},
): Promise<void> {
  const { BlixardClient } = await loadClient();
  const client = new BlixardClient({ endpoints, timeoutMs: 10_000, ...clientTls });
  const { members } = await client.members();
  for (const m of members) {
    if (m.id === selfId || m.raftAddress === undefined || m.apiAddress === undefined) continue;
    directory.set(m.id, { raftAddress: m.raftAddress, apiAddress: m.apiAddress });
  }
}

/**
 * Asks the cluster behind `endpoints` to add this node as a learner, and succeeds if it is (or
 * already was, at these addresses) a member. Retries while another change is pending or the
 * leader is busy, until `deadlineMs`.
 * @returns the configuration after the change.
 * @throws ConflictError if another node uses this id; UnavailableError after the deadline.
 */
export async function requestMembership(
  endpoints: readonly string[],
  self: { readonly id: NodeId } & MemberAddresses,
  log: JsonLogger,
  deadlineMs = 30_000,
  clientTls: NodeClientTls = {},
): Promise<ClusterConfig | undefined> {
  const { BlixardClient } = await loadClient();
  const client = new BlixardClient({ endpoints, timeoutMs: 10_000, ...clientTls });
  // Monotonic: a wall-clock step must not stretch or cut the deadline.
  const end = performance.now() + deadlineMs;
  let last: unknown;
  for (let attempt = 0; performance.now() < end; attempt++) {
    try {
      return await client.addLearner(
        { id: self.id, raftAddress: self.raftAddress, apiAddress: self.apiAddress },
        { timeoutMs: Math.max(1, Math.ceil(end - performance.now())) },
      );
    } catch (error) {
      last = error;
      if (!isBlixardError(error)) throw error;
      // Maybe it ran (a timeout, a lost answer) or ran before (a restart): look.
      const member = await client
        .members({ timeoutMs: 5000 })
        .then((m) => m.members.find((x) => x.id === self.id))
        .catch(() => undefined);
      if (member !== undefined) {
        if (member.raftAddress !== undefined && member.raftAddress !== self.raftAddress) {
          throw new ConflictError(
            `node id ${self.id} is already a member of the cluster, at ${member.raftAddress}`,
          );
        }
        return undefined;
      }
      if (
        !["CONFLICT", "UNAVAILABLE", "TIMEOUT", "OVERLOADED", "NOT_LEADER"].includes(error.code)
      ) {
        throw error;
      }
      log.info("join request failed; retrying", { error: error.message, code: error.code });
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * 2 ** attempt)));
    }
  }
  throw new UnavailableError(
    `could not join the cluster through ${endpoints.join(", ")}: ${
      last instanceof Error ? last.message : String(last)
    }`,
  );
}

/**
 * The API client, loaded when a node first asks the cluster something (it joins, or misses a
 * member's addresses): a node that restarts into its cluster never does, and starts sooner
 * without the client's modules.
 */
function loadClient(): Promise<typeof import("../../client/index.js")> {
  return import("../../client/index.js");
}
