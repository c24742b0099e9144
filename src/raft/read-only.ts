import type { Message, NodeId } from "./types.js";

/** How the leader confirms it is still the leader before serving a read. */
export const ReadOnlyOption = {
  /** One heartbeat round acknowledged by a quorum confirms leadership (ReadIndex, thesis §6.4). */
  Safe: "safe",
  /** Trust the leader lease maintained by check-quorum; no round trip (thesis §6.4.1). */
  LeaseBased: "lease-based",
} as const;
export type ReadOnlyOption = (typeof ReadOnlyOption)[keyof typeof ReadOnlyOption];

/** A read waiting for a quorum of heartbeat acknowledgements. */
export interface ReadIndexStatus {
  /** The original ReadIndex message; its first entry's data is the request context. */
  readonly request: Message;
  /** The commit index when the request arrived: the read may be served once applied reaches it. */
  readonly index: number;
  /** Who acknowledged the heartbeat carrying this request's context. */
  readonly acks: Map<NodeId, boolean>;
}

/** A request context as a map key (contexts are byte strings chosen by the caller). */
function contextKey(context: Uint8Array): string {
  let key = "";
  for (let i = 0; i < context.length; i++) key += String.fromCharCode(context[i] ?? 0);
  return key;
}

/**
 * The leader's queue of ReadIndex requests in safe mode (etcd's readOnly). Requests are
 * confirmed in arrival order: an acknowledgement of a later request's heartbeat confirms every
 * earlier one too, because the heartbeat was sent after they arrived.
 */
export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  constructor(readonly option: ReadOnlyOption) {}

  /** Queues a read request that arrived when the commit index was `index`. Duplicates are ignored. */
  addRequest(index: number, request: Message): void {
    const context = request.entries[0]?.data;
    if (context === undefined) return;
    const key = contextKey(context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { request, index, acks: new Map() });
    this.queue.push(key);
  }

  /** Records `id`'s acknowledgement of the heartbeat carrying `context`; returns the acks so far. */
  recvAck(id: NodeId, context: Uint8Array): ReadonlyMap<NodeId, boolean> | undefined {
    const status = this.pending.get(contextKey(context));
    if (status === undefined) return undefined;
    status.acks.set(id, true);
    return status.acks;
  }

  /**
   * Dequeues and returns every request up to and including the one with `context`, now that a
   * quorum has acknowledged it.
   */
  advance(context: Uint8Array): ReadIndexStatus[] {
    const key = contextKey(context);
    const position = this.queue.indexOf(key);
    if (position < 0) return [];
    const confirmed = this.queue.slice(0, position + 1);
    this.queue = this.queue.slice(position + 1);
    const statuses: ReadIndexStatus[] = [];
    for (const k of confirmed) {
      const status = this.pending.get(k);
      if (status !== undefined) statuses.push(status);
      this.pending.delete(k);
    }
    return statuses;
  }

  /** The context of the newest pending request, to piggyback on the next heartbeat. */
  lastPendingRequestContext(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    if (key === undefined) return undefined;
    return this.pending.get(key)?.request.entries[0]?.data;
  }

  /** Number of reads awaiting confirmation. */
  get pendingCount(): number {
    return this.queue.length;
  }

  /** Drops every pending read (on losing leadership; callers time out and retry). */
  reset(): void {
    this.pending.clear();
    this.queue = [];
  }
}
