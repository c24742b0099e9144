/** The key-value routes: `/v1/kv/{key}` (GET, PUT, DELETE), `/v1/kv/{key}/cas`, `/v1/kv`. */
import { NotFoundError } from "../../common/errors.js";
import { entryToJson, expectationFromJson, parsePositiveInteger } from "../convert.js";
import type { Permission } from "../../statemachine/acl/policy.js";
import type { RequestContext, RouteSpec, UncheckedRequest } from "../route.js";
import {
  CasBody,
  CasResponse,
  DeleteQuery,
  DeleteResponse,
  GetResponse,
  KeyParams,
  ListQuery,
  ListResponse,
  PutBody,
  PutResponse,
  ReadQuery,
} from "../schema/kv.js";
import type { Consistency } from "../schema/common.js";
import { valueFromJson } from "../schema/values.js";
import type { BlixardNodeService, KvPutRequest, ReadOptions, WriteOptions } from "../service.js";

function readOptions(context: RequestContext): ReadOptions {
  const consistency = context.query["consistency"] as Consistency | undefined;
  return { ...context.call, ...(consistency === undefined ? {} : { consistency }) };
}

function writeOptions(context: RequestContext): WriteOptions {
  // The call's own options when there is no session: no copy on every write.
  return context.session === undefined
    ? context.call
    : { ...context.call, session: context.session };
}

/** The kv permission of a request on its `:key` (any string, unvalidated). */
function onKey(access: "read" | "write"): (request: UncheckedRequest) => Permission {
  return (request) => ({ resource: "kv", access, key: request.params["key"] ?? "" });
}

function key(context: RequestContext): string {
  return context.params["key"] ?? "";
}

/** The kv routes over `service`. */
export function kvRoutes(service: BlixardNodeService): RouteSpec[] {
  const tag = "kv";
  return [
    {
      method: "GET",
      url: "/v1/kv/:key",
      tag,
      summary: "Read a key (404 NOT_FOUND if it does not exist)",
      params: KeyParams,
      querystring: ReadQuery,
      response: GetResponse,
      permission: onKey("read"),
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER"],
      handler: async (context) => {
        const result = await service.kvGet(key(context), readOptions(context));
        if (result.entry === null) {
          throw new NotFoundError(`key ${JSON.stringify(key(context))} does not exist`);
        }
        return { revision: result.revision, entry: entryToJson(result.entry) };
      },
    },
    {
      method: "PUT",
      url: "/v1/kv/:key",
      tag,
      summary: "Write a value (exactly-once with the session headers)",
      params: KeyParams,
      body: PutBody,
      response: PutResponse,
      permission: onKey("write"),
      sessioned: true,
      forwardToLeader: true,
      errors: ["TOO_LARGE", "NOT_LEADER", "OVERLOADED", "CONFLICT"],
      handler: async (context) => {
        const body = context.body as PutBody;
        const value = valueFromJson(body);
        // A plain put (the common case) is built without the optional fields' spreads.
        const request: KvPutRequest =
          body.returnPrevious === undefined && body.lease === undefined
            ? { key: key(context), value }
            : {
                key: key(context),
                value,
                ...(body.returnPrevious === undefined
                  ? {}
                  : { returnPrevious: body.returnPrevious }),
                ...(body.lease === undefined ? {} : { lease: body.lease }),
              };
        const result = await service.kvPut(request, writeOptions(context));
        return result.previous === undefined
          ? { revision: result.revision }
          : { revision: result.revision, previous: entryToJson(result.previous) };
      },
    },
    {
      method: "DELETE",
      url: "/v1/kv/:key",
      tag,
      summary: "Delete a key (`deleted: false` if it did not exist)",
      params: KeyParams,
      querystring: DeleteQuery,
      response: DeleteResponse,
      permission: onKey("write"),
      sessioned: true,
      forwardToLeader: true,
      errors: ["NOT_LEADER", "CONFLICT"],
      handler: async (context) => {
        const returnPrevious = context.query["returnPrevious"];
        const result = await service.kvDelete(
          {
            key: key(context),
            ...(returnPrevious === undefined ? {} : { returnPrevious: returnPrevious === "true" }),
          },
          writeOptions(context),
        );
        return {
          deleted: result.deleted,
          revision: result.revision,
          ...(result.previous === undefined ? {} : { previous: entryToJson(result.previous) }),
        };
      },
    },
    {
      method: "POST",
      url: "/v1/kv/:key/cas",
      tag,
      summary: "Compare-and-set: write if the key is as expected (else `succeeded: false`)",
      params: KeyParams,
      body: CasBody,
      response: CasResponse,
      permission: onKey("write"),
      sessioned: true,
      forwardToLeader: true,
      errors: ["TOO_LARGE", "NOT_LEADER", "CONFLICT"],
      handler: async (context) => {
        const body = context.body as CasBody;
        const result = await service.kvCompareAndSet(
          {
            key: key(context),
            expected: expectationFromJson(body.expected),
            value: valueFromJson(body),
          },
          writeOptions(context),
        );
        return result.succeeded
          ? { succeeded: true, revision: result.revision }
          : {
              succeeded: false,
              revision: result.revision,
              current: result.current === null ? null : entryToJson(result.current),
            };
      },
    },
    {
      method: "GET",
      url: "/v1/kv",
      tag,
      summary: "List keys by prefix and range, one page at a time",
      querystring: ListQuery,
      response: ListResponse,
      // A list returns keys under its prefix only (a range narrows it further).
      permission: (request) => {
        const prefix = request.query["prefix"];
        return { resource: "kv", access: "read", key: typeof prefix === "string" ? prefix : "" };
      },
      forwardToLeader: true,
      errors: ["NOT_LEADER"],
      handler: async (context) => {
        const q = context.query;
        const result = await service.kvList(
          {
            ...(q["prefix"] === undefined ? {} : { prefix: q["prefix"] }),
            ...(q["start"] === undefined ? {} : { start: q["start"] }),
            ...(q["end"] === undefined ? {} : { end: q["end"] }),
            ...(q["limit"] === undefined
              ? {}
              : { limit: parsePositiveInteger(q["limit"], "limit") }),
          },
          readOptions(context),
        );
        return {
          entries: result.entries.map(entryToJson),
          revision: result.revision,
          more: result.more,
          ...(result.nextStart === undefined ? {} : { nextStart: result.nextStart }),
        };
      },
    },
  ];
}
