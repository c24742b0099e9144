/** The SDK's typed results: the API's JSON with values as bytes. */
import type {
  ConfigJson,
  MembersResponse,
  StatusResponse,
  Consistency,
} from "../api/schema/index.js";

/** A key with its value (bytes) and revisions. */
export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  /** The value as text, when it is valid UTF-8 (a watch decodes it only when it is read). */
  readonly valueText?: string | undefined;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
}

/** A read of one key. */
export interface GetResult {
  /** The store revision the read saw. */
  readonly revision: number;
  readonly entry: KvEntry;
}

/** A put's result. */
export interface PutResult {
  readonly revision: number;
  readonly previous?: KvEntry;
}

/** A delete's result. */
export interface DeleteResult {
  readonly deleted: boolean;
  readonly revision: number;
  readonly previous?: KvEntry;
}

/** A compare-and-set's result; `current` is the key's entry (null if absent) when it failed. */
export type CasResult =
  | { readonly succeeded: true; readonly revision: number }
  | { readonly succeeded: false; readonly revision: number; readonly current: KvEntry | null };

/** What a compare-and-set expects. */
export type CasExpected =
  | { readonly absent: true }
  | { readonly modRevision: number }
  | { readonly value: Uint8Array | string };

/** A page of a list. */
export interface ListResult {
  readonly entries: readonly KvEntry[];
  readonly revision: number;
  readonly more: boolean;
  readonly nextStart?: string;
}

/** Per-call options. */
export interface RequestOptions {
  /** Cancels the call (rejects with `CancelledError`). */
  readonly signal?: AbortSignal;
  /** The call's deadline, retries included. Default: the client's `timeoutMs`. */
  readonly timeoutMs?: number;
}

/** Options of reads. */
export interface ReadRequestOptions extends RequestOptions {
  /** Default `linearizable`. */
  readonly consistency?: Consistency;
}

/** Options of a list. */
export interface ListOptions extends ReadRequestOptions {
  readonly prefix?: string;
  readonly start?: string;
  readonly end?: string;
  readonly limit?: number;
}

export type {
  ConfigJson as ClusterConfig,
  MembersResponse as Members,
  StatusResponse as NodeStatus,
};
