/**
 * The coordination part of the SDK, reached as `client.coord`: leases (grant, keepAlive, revoke,
 * timeToLive), multi-key txns and the blocking wait for a key to change. Grants, revokes and txns
 * go with the client's session, so a retry applies once. Locks and elections (`lock.ts`) are
 * built on these.
 */
import { valueFromResponse } from "../api/schema/values.js";
import type {
  KeepAliveResponse as KeepAliveJson,
  KvEntryJson,
  TxnOpResultJson,
  TxnResponse,
  WaitResponse,
} from "../api/schema/index.js";
import type { OrchestratorTransport } from "./orchestrator.js";
import type { KvEntry, RequestOptions } from "./types.js";

/** A txn condition on one key (an absent key has revisions and lease 0 and no value). */
export type TxnCompare =
  | {
      readonly key: string;
      readonly target: "value";
      readonly operator: "equal" | "notEqual" | "less" | "greater";
      readonly value: Uint8Array | string;
    }
  | {
      readonly key: string;
      readonly target: "version" | "createRevision" | "modRevision" | "lease";
      readonly operator: "equal" | "notEqual" | "less" | "greater";
      readonly number: number;
    };

/** A txn op. */
export type TxnOp =
  | { readonly op: "get"; readonly key: string }
  | {
      readonly op: "put";
      readonly key: string;
      readonly value: Uint8Array | string;
      readonly lease?: number;
    }
  | { readonly op: "delete"; readonly key: string };

/** A txn op's result. */
export type TxnOpResult =
  | { readonly op: "get"; readonly entry: KvEntry | null }
  | { readonly op: "put"; readonly revision: number }
  | { readonly op: "delete"; readonly deleted: boolean };

/** A txn's result. */
export interface TxnResult {
  readonly succeeded: boolean;
  readonly revision: number;
  readonly results: readonly TxnOpResult[];
}

/** A txn request. */
export interface TxnRequest {
  readonly compare: readonly TxnCompare[];
  readonly success: readonly TxnOp[];
  readonly failure?: readonly TxnOp[];
}

/** A lease as the leader sees it. */
export interface LeaseStatus {
  readonly id: number;
  readonly ttlMs: number;
  readonly remainingMs: number;
  readonly keys?: readonly string[];
}

/** What a wait saw. */
export type WaitResult = WaitResponse;

/** Converts an entry from JSON. Throws nothing. */
export function entryFromJson(json: KvEntryJson): KvEntry {
  return {
    key: json.key,
    value: valueFromResponse(json),
    ...(json.value === undefined ? {} : { valueText: json.value }),
    createRevision: json.createRevision,
    modRevision: json.modRevision,
    version: json.version,
  };
}

/** A value as the API's JSON fields. Throws nothing. */
export function valueFields(
  value: Uint8Array | string,
): { value: string } | { valueBase64: string } {
  return typeof value === "string"
    ? { value }
    : {
        valueBase64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString(
          "base64",
        ),
      };
}

function opToJson(op: TxnOp): Record<string, unknown> {
  if (op.op !== "put") return { op: op.op, key: op.key };
  return {
    op: "put",
    key: op.key,
    ...valueFields(op.value),
    ...(op.lease === undefined ? {} : { lease: op.lease }),
  };
}

function opResultFromJson(json: TxnOpResultJson): TxnOpResult {
  if (json.op === "get") {
    return {
      op: "get",
      entry: json.entry === undefined || json.entry === null ? null : entryFromJson(json.entry),
    };
  }
  if (json.op === "put") return { op: "put", revision: json.revision ?? 0 };
  return { op: "delete", deleted: json.deleted === true };
}

/** The coordination calls of a Blixard client. */
export class CoordinationClient {
  readonly #transport: OrchestratorTransport;

  /** @param transport the owning client's. Throws nothing. */
  constructor(transport: OrchestratorTransport) {
    this.#transport = transport;
  }

  /** Grants a lease of `ttlMs` (1000 ms to a day), exactly once. */
  async grant(ttlMs: number, options: RequestOptions = {}): Promise<{ id: number; ttlMs: number }> {
    return (await this.#transport.write(
      { method: "POST", path: "/v1/leases", body: { ttlMs } },
      options,
    )) as { id: number; ttlMs: number };
  }

  /**
   * Renews up to 1000 leases in one request (no log entry). Each comes back with its TTL, or
   * `ttlMs: -1` if it is gone (expired or revoked): its holder has lost it.
   */
  async keepAlive(
    ids: readonly number[],
    options: RequestOptions = {},
  ): Promise<{ id: number; ttlMs: number }[]> {
    const body = (await this.#transport.read(
      { method: "POST", path: "/v1/leases/keepalive", body: { ids } },
      options,
    )) as KeepAliveJson;
    return body.leases;
  }

  /** Revokes a lease, deleting its keys. @throws NotFoundError if it does not exist. */
  async revoke(id: number, options: RequestOptions = {}): Promise<{ deletedKeys: number }> {
    return (await this.#transport.write(
      { method: "DELETE", path: `/v1/leases/${id}` },
      options,
    )) as { deletedKeys: number };
  }

  /** A lease's TTL and what is left of it on the leader. @throws NotFoundError if it is gone. */
  async timeToLive(
    id: number,
    options: RequestOptions & { readonly keys?: boolean } = {},
  ): Promise<LeaseStatus> {
    return (await this.#transport.read(
      { method: "GET", path: `/v1/leases/${id}${options.keys === true ? "?keys=true" : ""}` },
      options,
    )) as LeaseStatus;
  }

  /** Runs a multi-key txn atomically, exactly once. */
  async txn(request: TxnRequest, options: RequestOptions = {}): Promise<TxnResult> {
    const body = (await this.#transport.write(
      {
        method: "POST",
        path: "/v1/txn",
        body: {
          compare: request.compare.map((c) =>
            c.target === "value"
              ? { key: c.key, target: c.target, operator: c.operator, ...valueFields(c.value) }
              : { key: c.key, target: c.target, operator: c.operator, number: c.number },
          ),
          success: request.success.map(opToJson),
          failure: (request.failure ?? []).map(opToJson),
        },
      },
      options,
    )) as TxnResponse;
    return {
      succeeded: body.succeeded,
      revision: body.revision,
      results: body.results.map(opResultFromJson),
    };
  }

  /**
   * Blocks until `key`'s createRevision is no longer `createRevision` (0: absent) or `waitMs`
   * (at most 8000) passes; `changed` says which.
   */
  async waitChange(
    key: string,
    createRevision: number,
    options: RequestOptions & { readonly waitMs?: number } = {},
  ): Promise<WaitResult> {
    const query = new URLSearchParams({ createRevision: String(createRevision) });
    if (options.waitMs !== undefined) query.set("waitMs", String(options.waitMs));
    return (await this.#transport.read(
      { method: "GET", path: `/v1/wait/${encodeURIComponent(key)}?${query.toString()}` },
      options,
    )) as WaitResult;
  }
}
