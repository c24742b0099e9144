/**
 * The coordination service: leases (grant, keep-alive, revoke, time-to-live), multi-key txns,
 * and a blocking wait for a key to change, which lock and election waiters use. Grants, revokes
 * and txns are kv commands proposed on the leader (exactly-once under a client session);
 * keep-alives and time-to-live are the leader's {@link Lessor}'s, confirmed by a ReadIndex round.
 */
import { CancelledError, NotFoundError, OverloadedError } from "../common/errors.js";
import { invariant } from "../common/assert.js";
import type { CommandPort } from "../node/command-port.js";
import type { Lessor, RenewResult } from "../node/lessor.js";
import {
  KV_COMMANDS,
  LEASE_COMMANDS,
  TXN_COMMANDS,
} from "../statemachine/cluster/command-namespaces.js";
import type { KvEntry, KvLease, KvTxnCommand, KvTxnResult } from "../statemachine/kv/types.js";
import { validateKey, validateKvCommand } from "../statemachine/kv/command-codec.js";
import type { CallOptions, WriteOptions } from "./service.js";

/** The longest a wait blocks, in ms (under the API's 10 s request deadline); the client then waits again. */
export const MAX_WAIT_MS = 8_000;
/** How long a wait blocks when the caller does not say. */
export const DEFAULT_WAIT_MS = 5_000;
/** The most waits one node holds at once; more fail with `OVERLOADED`. */
export const MAX_WAITERS = 10_000;

/**
 * What the coordination service needs of a node besides its command port (the composition
 * implements it).
 */
export interface CoordNodePort {
  /** This node's term while it leads, else undefined. */
  leaderTerm(): number | undefined;
  /** The applied kv store of this replica. */
  readonly store: {
    read(key: string): KvEntry | null;
    lease(id: number): KvLease | undefined;
    leaseKeys(id: number): string[];
    readonly revision: number;
  };
  /** Calls `listener` after applies (soon after, outside the apply loop); returns the unsubscribe. */
  onApplied(listener: () => void): () => void;
  /** The leader's lease clock. */
  readonly lessor: Lessor;
  /** The lessor's clock, ms. */
  now(): number;
}

/** A lease's state on the leader. */
export interface LeaseStatus {
  readonly id: number;
  readonly ttlMs: number;
  /** What is left of it on the leader's clock. */
  readonly remainingMs: number;
  /** Its keys, in key order, when asked for. */
  readonly keys?: readonly string[];
}

/** What a wait saw when it returned. */
export interface WaitResult {
  /** The key's createRevision now, 0 if absent. */
  readonly createRevision: number;
  /** True if it differs from the one waited on (else the wait timed out). */
  readonly changed: boolean;
  /** The store revision this replica had applied. */
  readonly revision: number;
}

interface Waiter {
  readonly key: string;
  readonly createRevision: number;
  readonly done: (changed: boolean) => void;
}

/** Options of a {@link CoordinationService}. */
export interface CoordinationServiceOptions {
  readonly node: CoordNodePort;
  /** The node's command port: lease and txn commands, read barriers, NOT_LEADER addresses. */
  readonly commands: CommandPort;
}

/** See the module comment. Every method may reject with the runtime's typed errors. */
export class CoordinationService {
  readonly #node: CoordNodePort;
  readonly #commands: CommandPort;
  readonly #waiters = new Set<Waiter>();
  #unsubscribe: (() => void) | undefined;

  /** Throws nothing. */
  constructor(options: CoordinationServiceOptions) {
    this.#node = options.node;
    this.#commands = options.commands;
  }

  /** Grants a lease of `ttlMs`. */
  async grant(ttlMs: number, options: WriteOptions = {}): Promise<{ id: number; ttlMs: number }> {
    const result = await this.#commands.propose(
      LEASE_COMMANDS,
      { op: "leaseGrant", ttlMs },
      options,
    );
    invariant(result.op === "leaseGrant", () => `a grant returned a ${result.op} result`);
    return { id: result.id, ttlMs: result.ttlMs };
  }

  /** Revokes lease `id`, deleting its keys. `NotFoundError` if it does not exist. */
  async revoke(id: number, options: WriteOptions = {}): Promise<{ deletedKeys: number }> {
    const result = await this.#commands.propose(
      LEASE_COMMANDS,
      { op: "leaseRevoke", ids: [id] },
      options,
    );
    invariant(result.op === "leaseRevoke", () => `a revoke returned a ${result.op} result`);
    if (result.revoked === 0) throw new NotFoundError(`lease ${id} does not exist (expired?)`);
    return { deletedKeys: result.deletedKeys };
  }

  /**
   * Renews leases on the leader (no log entry): each lives at least its TTL from when this
   * request arrived. A lease that does not exist, or whose expiry is already under way, comes
   * back with `ttlMs: -1`: its holder lost it. `NotLeaderError` off the leader.
   */
  async keepAlive(ids: readonly number[], options: CallOptions = {}): Promise<RenewResult[]> {
    const receivedAtMs = this.#node.now();
    const term = this.#node.leaderTerm();
    if (term === undefined) throw this.#commands.notLeader();
    // Confirm leadership after the arrival: a leader deposed before it would fail here.
    await this.#commands.barrier(LEASE_COMMANDS.name, options);
    return this.#node.lessor.renew(ids, receivedAtMs, term);
  }

  /** Lease `id` as the leader sees it. `NotFoundError` if it does not exist. */
  async timeToLive(id: number, withKeys: boolean, options: CallOptions = {}): Promise<LeaseStatus> {
    if (this.#node.leaderTerm() === undefined) throw this.#commands.notLeader();
    await this.#commands.barrier(LEASE_COMMANDS.name, options);
    const lease = this.#node.store.lease(id);
    const remainingMs = this.#node.lessor.remainingMs(id);
    if (lease === undefined || remainingMs === undefined) {
      throw new NotFoundError(`lease ${id} does not exist (expired or revoked?)`);
    }
    return {
      id,
      ttlMs: lease.ttlMs,
      remainingMs,
      ...(withKeys ? { keys: this.#node.store.leaseKeys(id) } : {}),
    };
  }

  /** Runs a txn (validated here, so bad input never reaches the log). */
  async txn(command: KvTxnCommand, options: WriteOptions = {}): Promise<KvTxnResult> {
    validateKvCommand(command);
    const result = await this.#commands.propose(TXN_COMMANDS, command, options);
    invariant(result.op === "txn", () => `a txn returned a ${result.op} result`);
    return result;
  }

  /**
   * Waits until `key`'s createRevision is no longer `createRevision` (0: absent), i.e. the key
   * was deleted, created, or deleted and created again; or until `timeoutMs` (default
   * {@link DEFAULT_WAIT_MS}, at most {@link MAX_WAIT_MS}) passes. Starts from a linearizable
   * read, so a change acknowledged before the call is seen. Any replica serves it.
   */
  async waitChange(
    key: string,
    createRevision: number,
    options: CallOptions & { waitMs?: number } = {},
  ): Promise<WaitResult> {
    validateKey(key);
    const waitMs = Math.min(options.waitMs ?? DEFAULT_WAIT_MS, MAX_WAIT_MS);
    await this.#commands.barrier(
      KV_COMMANDS.name,
      options.signal === undefined ? {} : { signal: options.signal },
    );
    if (this.#current(key) !== createRevision) return this.#waitResult(key, true);
    if (this.#waiters.size >= MAX_WAITERS) {
      throw new OverloadedError(`${MAX_WAITERS} waits are open on this node; retry later`);
    }
    const changed = await new Promise<boolean>((resolve, reject) => {
      const finish = (value: boolean | Error): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        this.#waiters.delete(waiter);
        if (this.#waiters.size === 0) this.#stopWatching();
        if (value instanceof Error) reject(value);
        else resolve(value);
      };
      const waiter: Waiter = { key, createRevision, done: finish };
      const onAbort = (): void => finish(new CancelledError("the wait was cancelled"));
      const timer = setTimeout(() => finish(false), waitMs);
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(waiter);
      this.#startWatching();
    });
    return this.#waitResult(key, changed);
  }

  /** Ends every wait (as unchanged). Throws nothing. */
  close(): void {
    for (const waiter of [...this.#waiters]) waiter.done(false);
  }

  #current(key: string): number {
    return this.#node.store.read(key)?.createRevision ?? 0;
  }

  #waitResult(key: string, changed: boolean): WaitResult {
    return { createRevision: this.#current(key), changed, revision: this.#node.store.revision };
  }

  #startWatching(): void {
    this.#unsubscribe ??= this.#node.onApplied(() => {
      for (const waiter of [...this.#waiters]) {
        if (this.#current(waiter.key) !== waiter.createRevision) waiter.done(true);
      }
    });
  }

  #stopWatching(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}
