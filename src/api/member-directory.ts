/**
 * Where members can be reached. The raft configuration knows only ids; the composition (the
 * CLI, from its flags, config file and the contexts of applied membership changes) keeps the
 * addresses, and the API reads them to list members and to forward requests to the leader.
 */
import type { NodeId } from "../raft/types.js";
import type { MemberAddresses } from "./service.js";

/** A member address book. */
export interface MemberDirectory {
  /** The addresses of `id`, or undefined if unknown. Throws nothing. */
  get(id: NodeId): MemberAddresses | undefined;
  /** Records (or replaces) the addresses of `id`. Throws nothing. */
  set(id: NodeId, addresses: MemberAddresses): void;
  /** Forgets `id` (a removed member), if the directory supports it. Throws nothing. */
  delete?(id: NodeId): void;
}

/** A {@link MemberDirectory} in memory, seeded with the initial members. */
export class InMemoryMemberDirectory implements MemberDirectory {
  readonly #members = new Map<NodeId, MemberAddresses>();

  /** @param initial the members known at start. */
  constructor(initial: Iterable<readonly [NodeId, MemberAddresses]> = []) {
    for (const [id, addresses] of initial) this.#members.set(id, addresses);
  }

  /** @inheritdoc */
  get(id: NodeId): MemberAddresses | undefined {
    return this.#members.get(id);
  }

  /** @inheritdoc */
  set(id: NodeId, addresses: MemberAddresses): void {
    this.#members.set(id, addresses);
  }

  /** @inheritdoc */
  delete(id: NodeId): void {
    this.#members.delete(id);
  }

  /** Every known member and its addresses, by id. */
  entries(): [NodeId, MemberAddresses][] {
    return [...this.#members].sort(([a], [b]) => a - b);
  }
}

/**
 * The context bytes a membership change carries: the new member's addresses as UTF-8 JSON, so
 * every node that applies the change can learn them. Throws nothing.
 */
export function encodeMemberContext(addresses: MemberAddresses): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({ raftAddress: addresses.raftAddress, apiAddress: addresses.apiAddress }),
  );
}

/**
 * Reads the addresses {@link encodeMemberContext} wrote, or undefined when `context` is empty or
 * is not such a context (a change proposed by something else). Throws nothing.
 */
export function decodeMemberContext(context: Uint8Array): MemberAddresses | undefined {
  if (context.byteLength === 0) return undefined;
  try {
    const value: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(context));
    if (typeof value !== "object" || value === null) return undefined;
    const { raftAddress, apiAddress } = value as Record<string, unknown>;
    if (typeof raftAddress !== "string" || typeof apiAddress !== "string") return undefined;
    return { raftAddress, apiAddress };
  } catch {
    return undefined;
  }
}

/** The API URL of member `id` from `directory`, or undefined if unknown or not a URL. */
export function memberApiUrl(directory: MemberDirectory | undefined, id: NodeId): URL | undefined {
  const address = directory?.get(id)?.apiAddress;
  return address === undefined || !URL.canParse(address) ? undefined : new URL(address);
}
