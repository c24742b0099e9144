/**
 * The replicated state machine of a Blixard node: the kv store and the orchestrator model in one
 * Raft group, under client sessions. Entries are command envelopes (`encodeCommandEnvelope`)
 * around a kv command (`encodeKvCommand`) or an orchestrator command
 * ({@link encodeOrchestratorCommand}); the first payload byte picks the namespace
 * (`namespace.ts`). It offers the kv store's reads, plus the orchestrator's and the ACL's
 * queries.
 */
import type { NodeId } from "../../raft/types.js";
import type { AclQueries } from "../acl/acl-state.js";
import type { AclResult } from "../acl/types.js";
import type { ChangeObserver } from "../changes.js";
import type { CommandResult } from "../command-result.js";
import type { KvListOptions, KvListResult, KvStoreOptions } from "../kv/store.js";
import type { KvEntry, KvLease, KvResult } from "../kv/types.js";
import type { OrchestratorResult } from "../orchestrator/commands.js";
import type { OrchestratorStateOptions } from "../orchestrator/state.js";
import type {
  NodeAssignments,
  OrchestratorQueries,
  TaskListOptions,
} from "../orchestrator/queries.js";
import type { OrchestratorSettings, Task, Vm, Worker } from "../orchestrator/types.js";
import { SessionedStateMachine, type SessionInfo } from "../session/sessioned-state-machine.js";
import type { SessionOptions } from "../session/session-options.js";
import type { AppliedEntry, SnapshotEncoding, StateMachine } from "../state-machine.js";
import {
  ClusterApplication,
  type ClusterCommand,
  type ClusterResult,
} from "./cluster-application.js";

export { encodeOrchestratorCommand } from "../orchestrator/command-codec.js";
export { encodeAclCommand } from "../acl/codec.js";

/** Options of a cluster state machine. Every replica must run with the same values. */
export interface ClusterStateMachineOptions extends KvStoreOptions {
  /** Bounds of the client session table. */
  readonly sessions?: SessionOptions;
  /**
   * How the orchestrator model places (`referenceScheduler`: by scanning every worker; for
   * benches comparing it with the placement index). Default: the index.
   */
  readonly orchestrator?: OrchestratorStateOptions;
}

/** What a successful command returns: a kv result for a kv command, an orchestrator result for an orchestrator one. */
export type ClusterResultValue = KvResult | OrchestratorResult | AclResult;

/**
 * The orchestrator's queries, always answered by the application's current model (a restore
 * replaces the model, so a reference to it would go stale; this view does not).
 */
class OrchestratorView implements OrchestratorQueries {
  readonly #app: ClusterApplication;

  constructor(app: ClusterApplication) {
    this.#app = app;
  }

  workers(): readonly Worker[] {
    return this.#app.orchestrator.workers();
  }

  worker(nodeId: NodeId): Worker | undefined {
    return this.#app.orchestrator.worker(nodeId);
  }

  task(id: string): Task | undefined {
    return this.#app.orchestrator.task(id);
  }

  tasks(options?: TaskListOptions): readonly Task[] {
    return this.#app.orchestrator.tasks(options);
  }

  vm(name: string): Vm | undefined {
    return this.#app.orchestrator.vm(name);
  }

  vms(): readonly Vm[] {
    return this.#app.orchestrator.vms();
  }

  assignments(nodeId: NodeId): NodeAssignments {
    return this.#app.orchestrator.assignments(nodeId);
  }

  settings(): OrchestratorSettings {
    return this.#app.orchestrator.settings();
  }
}

/**
 * The ACL state's queries, always answered by the application's current state (a restore
 * replaces it), plus the generation that changes whenever the state may have.
 */
export interface AclView extends AclQueries {
  /** Changes on every applied ACL command and every restore (local to this process). */
  readonly generation: number;
}

class AclStateView implements AclView {
  readonly #app: ClusterApplication;
  constructor(app: ClusterApplication) {
    this.#app = app;
  }
  get generation(): number {
    return this.#app.aclGeneration;
  }
  get bootstrapped(): boolean {
    return this.#app.acl.bootstrapped;
  }
  tokenByHash(secretHash: string) {
    return this.#app.acl.tokenByHash(secretHash);
  }
  token(accessorId: string) {
    return this.#app.acl.token(accessorId);
  }
  tokens() {
    return this.#app.acl.tokens();
  }
  policy(name: string) {
    return this.#app.acl.policy(name);
  }
  policies() {
    return this.#app.acl.policies();
  }
  certBinding(commonName: string) {
    return this.#app.acl.certBinding(commonName);
  }
  certBindings() {
    return this.#app.acl.certBindings();
  }
}

/**
 * The kv store, the orchestrator and the ACL state under one session layer. `apply` returns a
 * {@link CommandResult} of the command's own namespace's result (a `KvResult` for a kv command). See "Retry rules for client writers" in
 * `sessioned-state-machine.ts`: both namespaces share one session table.
 */
export class ClusterStateMachine implements StateMachine<CommandResult<ClusterResultValue>> {
  readonly #app: ClusterApplication;
  readonly #machine: SessionedStateMachine<ClusterCommand, ClusterResult>;
  readonly #orchestrator: OrchestratorQueries;
  readonly #acl: AclView;

  /** An empty store and model. Throws `InvalidArgumentError` if an option is out of range. */
  constructor(options: ClusterStateMachineOptions = {}) {
    this.#app = new ClusterApplication(
      options.maxStoreBytes === undefined ? {} : { maxStoreBytes: options.maxStoreBytes },
      options.orchestrator,
    );
    this.#machine = new SessionedStateMachine(this.#app, options.sessions);
    this.#orchestrator = new OrchestratorView(this.#app);
    this.#acl = new AclStateView(this.#app);
  }

  /**
   * Applies one committed entry. Never throws for a bad command (see the retry rules); throws
   * `InternalError` if entries arrive out of index order or an invariant fails.
   */
  apply(entry: AppliedEntry): CommandResult<ClusterResultValue> {
    const result = this.#machine.apply(entry);
    return result.ok ? { ok: true, value: result.value.result } : result;
  }

  /** The whole state (log time, sessions, kv, orchestrator) as deterministic, checksummed bytes. Throws nothing. */
  snapshot(): Uint8Array {
    return this.#machine.snapshot();
  }

  /**
   * Captures the state now and returns its snapshot to encode a slice at a time while entries
   * keep being applied: the bytes of {@link snapshot} at this call. Throws nothing.
   */
  captureSnapshot(): SnapshotEncoding {
    return this.#machine.captureSnapshot();
  }

  /** Replaces the state with a snapshot's; throws `InvalidArgumentError` on bad bytes, changing nothing. */
  restore(data: Uint8Array): void {
    this.#machine.restore(data);
  }

  /**
   * Reports every change applied from now on (kv writes and deletes, touched workers, tasks and
   * VMs, ACL commands) to `observer`, synchronously inside `apply`; undefined stops. Observers
   * never change what is applied. See `../changes.ts`. Throws nothing.
   */
  observe(observer: ChangeObserver | undefined): void {
    this.#app.observe(observer);
  }

  /** The orchestrator's read-only queries, outside the log (linearizable after a ReadIndex). */
  get orchestrator(): OrchestratorQueries {
    return this.#orchestrator;
  }

  /** The ACL state's queries, outside the log (tokens by hash for the API's authenticator). */
  get acl(): AclView {
    return this.#acl;
  }

  /**
   * The entry of `key` (value copied) or null, outside the log. Throws `InvalidArgumentError` or
   * `TooLargeError` for a bad key.
   */
  read(key: string): KvEntry | null {
    return this.#app.kv.read(key);
  }

  /** One page of keys by prefix and/or range, outside the log; see `KvStore.list` for bounds and throws. */
  list(options: KvListOptions = {}): KvListResult {
    return this.#app.kv.list(options);
  }

  /** The lease `id` of the kv store, or undefined. Throws nothing. */
  lease(id: number): KvLease | undefined {
    return this.#app.kv.lease(id);
  }

  /** The keys attached to lease `id`, in key order. Throws nothing. */
  leaseKeys(id: number): string[] {
    return this.#app.kv.leaseKeys(id);
  }

  /** Visits every lease (id, TTL) in id order. Throws nothing. */
  forEachLease(visit: (id: number, ttlMs: number) => void): void {
    this.#app.kv.forEachLease(visit);
  }

  /** How many leases the kv store holds. */
  get leaseCount(): number {
    return this.#app.kv.leaseCount;
  }

  /** The kv store revision. */
  get revision(): number {
    return this.#app.kv.revision;
  }

  /** How many keys there are. */
  get keyCount(): number {
    return this.#app.kv.keyCount;
  }

  /** Bytes used against the kv store quota. */
  get storeBytes(): number {
    return this.#app.kv.storeBytes;
  }

  /** Log time: the largest `proposedAtMs` applied. */
  get logTimeMs(): number {
    return this.#machine.logTimeMs;
  }

  /** How many client sessions are open. */
  get sessionCount(): number {
    return this.#machine.sessionCount;
  }

  /** The open session of `clientId`, or undefined. Throws nothing. */
  session(clientId: string): SessionInfo | undefined {
    return this.#machine.session(clientId);
  }
}
