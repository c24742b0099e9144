/**
 * What the state machines report as they apply: a hook for observers outside the deterministic
 * core (the event stream, kv watch). Observers only listen: nothing they do can change what a
 * replica applies, so the state stays a function of the log. Reports are synchronous, in apply
 * order, and only for changes that took effect (an error result reports nothing).
 */
import type { NodeId } from "../raft/types.js";

/** One applied change. */
export type StateChange =
  /** A kv key was written at `modRevision` (a put, a successful compare-and-set, a txn's put). */
  | {
      readonly kind: "kv.put";
      readonly key: string;
      /** The stored value (shared with the store, never mutated: do not mutate it either). */
      readonly value: Uint8Array;
      readonly createRevision: number;
      readonly modRevision: number;
      readonly version: number;
    }
  /** A kv key was deleted; `revision` is the store revision of the delete. */
  | { readonly kind: "kv.delete"; readonly key: string; readonly revision: number }
  /** A task was added or changed (read its state once the entry is applied). */
  | { readonly kind: "task"; readonly id: string }
  /** A VM was added, changed or removed (read its state, or its absence, after the entry). */
  | { readonly kind: "vm"; readonly name: string }
  /** A worker was added or changed (status, drain, allocation). */
  | { readonly kind: "worker"; readonly nodeId: NodeId }
  /** The orchestrator settings were replaced. */
  | { readonly kind: "settings" }
  /** An ACL command took effect (`command` is its type: no names or secrets). */
  | { readonly kind: "acl"; readonly command: string };

/**
 * Receives applied changes. Must not throw and must not call back into the state machine's
 * write path; it runs inside `apply`.
 */
export type ChangeObserver = (change: StateChange) => void;
