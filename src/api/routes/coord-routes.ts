/**
 * The coordination routes: leases (`/v1/leases`), txns (`/v1/txn`) and the blocking wait for a
 * key to change (`/v1/wait/{key}`). Locks and elections are client recipes on these.
 */
import { entryToJson, parsePositiveInteger } from "../convert.js";
import type { CoordinationService } from "../coord-service.js";
import type { Permission } from "../../statemachine/acl/policy.js";
import type {
  KvCompare,
  KvCompareOperator,
  KvCompareTarget,
  KvTxnOp,
  KvTxnOpResult,
} from "../../statemachine/kv/types.js";
import type { RequestContext, RouteSpec, UncheckedRequest } from "../route.js";
import {
  GrantBody,
  GrantResponse,
  KeepAliveBody,
  KeepAliveResponse,
  LeaseParams,
  RevokeResponse,
  TimeToLiveQuery,
  TimeToLiveResponse,
  TxnBody,
  TxnResponse,
  WaitQuery,
  WaitResponse,
  type CompareJson,
  type TxnOpJson,
  type TxnOpResultJson,
} from "../schema/coord.js";
import { KeyParams } from "../schema/kv.js";
import { valueFromJson } from "../schema/values.js";
import { InvalidArgumentError } from "../../common/errors.js";
import type { WriteOptions } from "../service.js";

function writeOptions(context: RequestContext): WriteOptions {
  return {
    ...context.call,
    ...(context.session === undefined ? {} : { session: context.session }),
  };
}

function compareFromJson(json: CompareJson): KvCompare {
  const target = json.target as KvCompareTarget;
  const operator = json.operator as KvCompareOperator;
  if (target === "value") {
    if (json.number !== undefined) {
      throw new InvalidArgumentError(`compare on ${json.key}: a value compare takes no number`);
    }
    return { key: json.key, target, operator, value: valueFromJson(json) };
  }
  if (json.number === undefined || json.value !== undefined || json.valueBase64 !== undefined) {
    throw new InvalidArgumentError(`compare on ${json.key}: a ${target} compare takes a number`);
  }
  return { key: json.key, target, operator, number: json.number };
}

function opFromJson(json: TxnOpJson): KvTxnOp {
  if (json.op === "put") {
    return {
      op: "put",
      key: json.key,
      value: valueFromJson(json),
      ...(json.lease === undefined ? {} : { lease: json.lease }),
    };
  }
  if (json.value !== undefined || json.valueBase64 !== undefined || json.lease !== undefined) {
    throw new InvalidArgumentError(`a txn ${json.op} of ${json.key} takes no value or lease`);
  }
  return { op: json.op as "get" | "delete", key: json.key };
}

function opResultToJson(result: KvTxnOpResult): TxnOpResultJson {
  switch (result.op) {
    case "get":
      return { op: "get", entry: result.entry === null ? null : entryToJson(result.entry) };
    case "put":
      return { op: "put", revision: result.revision };
    case "delete":
      return { op: "delete", deleted: result.deleted };
  }
}

/** The longest common prefix of `keys` ("" for none). Throws nothing. */
export function commonPrefix(keys: readonly string[]): string {
  let prefix = keys[0] ?? "";
  for (const key of keys) {
    let i = 0;
    while (i < prefix.length && i < key.length && prefix[i] === key[i]) i++;
    prefix = prefix.slice(0, i);
  }
  return prefix;
}

/**
 * A txn needs kv access on the longest common prefix of every key it names (compares and both
 * branches): write if any op writes, else read. Anything malformed asks for write on every key.
 */
function txnPermission(request: UncheckedRequest): Permission {
  const body = request.body as Record<string, unknown> | null | undefined;
  const keys: string[] = [];
  let writes = false;
  const collect = (list: unknown, ops: boolean): boolean => {
    if (list === undefined) return true;
    if (!Array.isArray(list)) return false;
    for (const item of list as unknown[]) {
      const key = (item as { key?: unknown } | null)?.key;
      if (typeof key !== "string") return false;
      keys.push(key);
      if (ops && (item as { op?: unknown }).op !== "get") writes = true;
    }
    return true;
  };
  const wellFormed =
    typeof body === "object" &&
    body !== null &&
    collect(body["compare"], false) &&
    collect(body["success"], true) &&
    collect(body["failure"], true);
  if (!wellFormed) return { resource: "kv", access: "write", key: "" };
  return { resource: "kv", access: writes ? "write" : "read", key: commonPrefix(keys) };
}

/** The coordination routes over `service`. */
export function coordRoutes(service: CoordinationService): RouteSpec[] {
  const tag = "coordination";
  return [
    {
      method: "POST",
      url: "/v1/leases",
      tag,
      summary: "Grant a lease (keys put with it vanish when it expires or is revoked)",
      body: GrantBody,
      response: GrantResponse,
      permission: { resource: "lease", access: "write" },
      sessioned: true,
      forwardToLeader: true,
      errors: ["NOT_LEADER", "OVERLOADED", "CONFLICT"],
      handler: async (context) => {
        const body = context.body as GrantBody;
        return service.grant(body.ttlMs, writeOptions(context));
      },
    },
    {
      method: "DELETE",
      url: "/v1/leases/:id",
      tag,
      summary: "Revoke a lease, deleting its keys (404 if it does not exist)",
      params: LeaseParams,
      response: RevokeResponse,
      permission: { resource: "lease", access: "write" },
      sessioned: true,
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER", "CONFLICT"],
      handler: (context) =>
        service.revoke(parsePositiveInteger(context.params["id"], "id"), writeOptions(context)),
    },
    {
      method: "POST",
      url: "/v1/leases/keepalive",
      tag,
      summary: "Renew up to 1000 leases on the leader, no log entry (ttlMs -1: the lease is gone)",
      body: KeepAliveBody,
      response: KeepAliveResponse,
      permission: { resource: "lease", access: "write" },
      forwardToLeader: true,
      errors: ["NOT_LEADER"],
      handler: async (context) => {
        const body = context.body as KeepAliveBody;
        return { leases: await service.keepAlive(body.ids, context.call) };
      },
    },
    {
      method: "GET",
      url: "/v1/leases/:id",
      tag,
      summary: "A lease's TTL and what is left of it on the leader (404 if it does not exist)",
      params: LeaseParams,
      querystring: TimeToLiveQuery,
      response: TimeToLiveResponse,
      permission: { resource: "lease", access: "read" },
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER"],
      handler: (context) =>
        service.timeToLive(
          parsePositiveInteger(context.params["id"], "id"),
          context.query["keys"] === "true",
          context.call,
        ),
    },
    {
      method: "POST",
      url: "/v1/txn",
      tag,
      summary: "A multi-key transaction: compares, then the success or failure ops, atomically",
      body: TxnBody,
      response: TxnResponse,
      permission: txnPermission,
      sessioned: true,
      forwardToLeader: true,
      errors: ["TOO_LARGE", "NOT_FOUND", "NOT_LEADER", "OVERLOADED", "CONFLICT"],
      handler: async (context) => {
        const body = context.body as TxnBody;
        const result = await service.txn(
          {
            op: "txn",
            compare: body.compare.map(compareFromJson),
            success: body.success.map(opFromJson),
            failure: (body.failure ?? []).map(opFromJson),
          },
          writeOptions(context),
        );
        return {
          succeeded: result.succeeded,
          revision: result.revision,
          results: result.results.map(opResultToJson),
        };
      },
    },
    {
      method: "GET",
      url: "/v1/wait/:key",
      tag,
      summary: "Block until a key's createRevision is no longer the given one (or waitMs passes)",
      params: KeyParams,
      querystring: WaitQuery,
      response: WaitResponse,
      permission: (request) => ({
        resource: "kv",
        access: "read",
        key: request.params["key"] ?? "",
      }),
      errors: ["NOT_LEADER", "OVERLOADED"],
      handler: (context) => {
        const waitMs = context.query["waitMs"];
        return service.waitChange(
          context.params["key"] ?? "",
          Number(context.query["createRevision"]),
          {
            ...context.call,
            ...(waitMs === undefined ? {} : { waitMs: parsePositiveInteger(waitMs, "waitMs") }),
          },
        );
      },
    },
  ];
}
