/**
 * Locks and elections on leases and txns (etcd's `concurrency` recipes):
 *
 * - A {@link Lease} is granted once and kept alive in the background every third of its TTL;
 *   `lost` settles when a keep-alive finds it gone (or none succeeds within the TTL).
 * - {@link lock}: each contender creates `NAME/<lease id>` under its lease in one txn; the key's
 *   createRevision is its place in line (FIFO) and its **fencing token**. It holds the lock once
 *   no key under `NAME/` has a smaller createRevision; until then it waits (a blocking wait on
 *   the server) for the deletion of the key just before its own. A holder whose lease expires
 *   loses its key, so the next in line proceeds with a larger token: a protected resource that
 *   refuses tokens below the largest it has seen is safe against paused holders.
 * - {@link campaign}: the same line, the value being the candidate's; the leader is the key with
 *   the smallest createRevision. {@link observeLeader} follows it.
 */
import { CancelledError, InternalError } from "../common/errors.js";
import type { BlixardClient } from "./client.js";
import type { KvEntry, RequestOptions } from "./types.js";

/** A lease kept alive in the background until {@link Lease.revoke} or {@link Lease.close}. */
export class Lease {
  readonly id: number;
  readonly ttlMs: number;
  /** Settles (never rejects) when the lease is known lost: expired, revoked, or unrenewable. */
  readonly lost: Promise<void>;
  readonly #client: BlixardClient;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #markLost: () => void = () => undefined;
  /** When the last successful renewal was sent (performance.now()). */
  #renewedAtMs: number;

  private constructor(client: BlixardClient, id: number, ttlMs: number, sentAtMs: number) {
    this.#client = client;
    this.id = id;
    this.ttlMs = ttlMs;
    this.#renewedAtMs = sentAtMs;
    this.lost = new Promise((resolve) => (this.#markLost = resolve));
    this.#schedule();
  }

  /** Grants a lease of `ttlMs` and starts keeping it alive. */
  static async grant(
    client: BlixardClient,
    ttlMs: number,
    options: RequestOptions = {},
  ): Promise<Lease> {
    const sentAtMs = performance.now();
    const granted = await client.coord.grant(ttlMs, options);
    return new Lease(client, granted.id, granted.ttlMs, sentAtMs);
  }

  /** How long the lease surely lives on, measured from the last renewal this client saw succeed. */
  get validForMs(): number {
    return Math.max(0, this.#renewedAtMs + this.ttlMs - performance.now());
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => void this.#renew(), Math.max(50, Math.floor(this.ttlMs / 3)));
  }

  async #renew(): Promise<void> {
    const sentAtMs = performance.now();
    try {
      const [result] = await this.#client.coord.keepAlive([this.id], {
        timeoutMs: Math.max(100, this.validForMs),
      });
      if (result === undefined || result.ttlMs < 0) return this.#lose();
      this.#renewedAtMs = sentAtMs;
    } catch {
      if (this.validForMs === 0) return this.#lose();
    }
    this.#schedule();
  }

  #lose(): void {
    this.close();
    this.#markLost();
  }

  /** Stops the keep-alives (the lease then expires on its own). Throws nothing. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  /** Stops the keep-alives and revokes the lease, deleting its keys. */
  async revoke(options: RequestOptions = {}): Promise<void> {
    this.close();
    try {
      await this.#client.coord.revoke(this.id, options);
    } finally {
      this.#markLost();
    }
  }
}

/** Options of {@link lock} and {@link campaign}. */
export interface LineOptions extends RequestOptions {
  /** Hold it under this lease (not revoked on release); default: a new lease of `ttlMs`. */
  readonly lease?: Lease;
  /** The new lease's TTL. Default 10 000 ms. */
  readonly ttlMs?: number;
}

/** A held lock or leadership. */
export interface Held {
  /** The key that holds it. */
  readonly key: string;
  /** The fencing token: the key's createRevision. Larger for every later holder. */
  readonly token: number;
  /** The lease it is held under. */
  readonly lease: Lease;
  /** Releases it (deletes the key; revokes the lease if it was made for this). */
  release(options?: RequestOptions): Promise<void>;
}

const DEFAULT_TTL_MS = 10_000;
const EMPTY_LIST_POLL_MS = 250;

/** The entries under `prefix` (every page), in key order. */
async function listAll(
  client: BlixardClient,
  prefix: string,
  options: RequestOptions,
): Promise<KvEntry[]> {
  const entries: KvEntry[] = [];
  let start: string | undefined;
  for (;;) {
    const page = await client.list({
      prefix,
      limit: 1000,
      ...(start === undefined ? {} : { start }),
      ...options,
    });
    entries.push(...page.entries);
    if (!page.more || page.nextStart === undefined) return entries;
    start = page.nextStart;
  }
}

function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new CancelledError("cancelled while waiting in line");
}

/** Joins the line under `name` with `value` and waits to reach its head. */
async function waitInLine(
  client: BlixardClient,
  name: string,
  value: Uint8Array | string,
  options: LineOptions,
): Promise<Held> {
  const own = options.lease === undefined;
  const lease =
    options.lease ?? (await Lease.grant(client, options.ttlMs ?? DEFAULT_TTL_MS, options));
  const prefix = `${name}/`;
  const key = `${prefix}${lease.id.toString(16)}`;
  const callOptions = options.signal === undefined ? {} : { signal: options.signal };
  let token = 0;
  try {
    const joined = await client.coord.txn(
      {
        compare: [{ key, target: "createRevision", operator: "equal", number: 0 }],
        success: [{ op: "put", key, value, lease: lease.id }],
        failure: [{ op: "get", key }],
      },
      callOptions,
    );
    const first = joined.results[0];
    token =
      first?.op === "put"
        ? first.revision
        : first?.op === "get" && first.entry !== null
          ? first.entry.createRevision
          : 0;
    if (token === 0) throw new InternalError(`joining the line of ${name} returned no revision`);
    for (;;) {
      checkSignal(options.signal);
      const line = await listAll(client, prefix, callOptions);
      if (!line.some((entry) => entry.key === key && entry.createRevision === token)) {
        throw new CancelledError(
          `lost the place in the line of ${name}: lease ${lease.id} expired`,
        );
      }
      let ahead: KvEntry | undefined;
      for (const entry of line) {
        if (
          entry.createRevision < token &&
          (ahead === undefined || entry.createRevision > ahead.createRevision)
        ) {
          ahead = entry;
        }
      }
      if (ahead === undefined) break;
      await client.coord.waitChange(ahead.key, ahead.createRevision, callOptions);
    }
  } catch (error) {
    if (own) await lease.revoke().catch(() => undefined);
    else await client.delete(key).catch(() => undefined);
    throw error;
  }
  return {
    key,
    token,
    lease,
    release: async (releaseOptions: RequestOptions = {}) => {
      if (own) await lease.revoke(releaseOptions);
      else await client.delete(key, releaseOptions);
    },
  };
}

/**
 * Acquires the lock `name` (FIFO), resolving with its fencing token once held.
 * @throws CancelledError if `signal` aborts or the lease is lost while waiting.
 */
export async function lock(
  client: BlixardClient,
  name: string,
  options: LineOptions = {},
): Promise<Held> {
  return waitInLine(client, name, "", options);
}

/**
 * Campaigns for leadership of election `name` with `value`; resolves once elected.
 * @throws CancelledError if `signal` aborts or the lease is lost while waiting.
 */
export async function campaign(
  client: BlixardClient,
  name: string,
  value: Uint8Array | string,
  options: LineOptions = {},
): Promise<Held> {
  return waitInLine(client, name, value, options);
}

/** The current leader of election `name` (the oldest candidate), or null. */
export async function electionLeader(
  client: BlixardClient,
  name: string,
  options: RequestOptions = {},
): Promise<KvEntry | null> {
  let leader: KvEntry | null = null;
  for (const entry of await listAll(client, `${name}/`, options)) {
    if (leader === null || entry.createRevision < leader.createRevision) leader = entry;
  }
  return leader;
}

/**
 * Yields the leader of election `name` (null: none) now and at every change, until `signal`
 * aborts. Waits on the leader's key with the server's blocking wait; with no leader, polls.
 */
export async function* observeLeader(
  client: BlixardClient,
  name: string,
  options: { readonly signal?: AbortSignal } = {},
): AsyncGenerator<KvEntry | null> {
  let last: number | undefined;
  while (options.signal?.aborted !== true) {
    const leader = await electionLeader(client, name, options);
    const current = leader?.createRevision ?? 0;
    if (current !== last) {
      last = current;
      yield leader;
    }
    if (leader === null) {
      await new Promise((resolve) => setTimeout(resolve, EMPTY_LIST_POLL_MS));
    } else {
      await client.coord.waitChange(leader.key, leader.createRevision, options);
    }
  }
}
