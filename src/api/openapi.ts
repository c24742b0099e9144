/**
 * Builds the OpenAPI 3.1 document from the route table: the same TypeBox schemas the server
 * validates requests with, so the document cannot drift from the behaviour. OpenAPI 3.1 uses
 * JSON Schema 2020-12, which TypeBox schemas are.
 */
import type { TSchema } from "@sinclair/typebox";
import { ERROR_CODES, type ErrorCode } from "../common/errors.js";
import type { RouteSpec } from "./route.js";
import { ErrorBody, HEADERS, SessionHeaders } from "./schema/common.js";

/** Document metadata. */
export interface OpenApiInfo {
  readonly title: string;
  readonly version: string;
}

/** A plain JSON copy of a schema (drops TypeBox's symbol keys). */
function plain(schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}

function properties(schema: TSchema | undefined): [string, Record<string, unknown>, boolean][] {
  if (schema === undefined) return [];
  const json = plain(schema);
  const props = (json["properties"] ?? {}) as Record<string, Record<string, unknown>>;
  const required = new Set((json["required"] ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => [name, s, required.has(name)]);
}

function parameters(route: RouteSpec): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const [name, schema] of properties(route.params)) {
    out.push({ name, in: "path", required: true, schema });
  }
  for (const [name, schema, required] of properties(route.querystring)) {
    out.push({ name, in: "query", required, schema });
  }
  const headerNames: string[] = [HEADERS.timeoutMs];
  if (route.sessioned === true)
    headerNames.push(HEADERS.clientId, HEADERS.sequence, HEADERS.ackedBelow);
  for (const [name, schema] of properties(SessionHeaders)) {
    if (headerNames.includes(name)) out.push({ name, in: "header", required: false, schema });
  }
  return out;
}

function errorResponses(route: RouteSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const codes = ["INVALID_ARGUMENT", ...(route.errors ?? [])] as ErrorCode[];
  for (const code of codes) {
    const status = String(ERROR_CODES[code].httpStatus);
    const existing = out[status] as { description: string } | undefined;
    out[status] = {
      description: existing === undefined ? code : `${existing.description}, ${code}`,
      content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorBody" } } },
    };
  }
  out["default"] = {
    description: "any other error: {code, message}, status from the code",
    content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorBody" } } },
  };
  return out;
}

/** The media types of a route's 200 response. */
function successContent(route: RouteSpec): Record<string, unknown> {
  if (route.response !== undefined)
    return { "application/json": { schema: plain(route.response) } };
  if (route.changeData !== undefined) {
    return {
      "text/event-stream": {
        schema: {
          type: "string",
          description:
            "Server-Sent Events: `open`, `change` (data: x-change-data), progress or " +
            "heartbeat, and `error` messages",
        },
        "x-change-data": plain(route.changeData),
      },
    };
  }
  if (route.url === "/metrics") return { "text/plain": { schema: { type: "string" } } };
  return { "application/json": { schema: {} } };
}

/** The OpenAPI 3.1 document of `routes`. Throws nothing. */
export function buildOpenApiDocument(routes: readonly RouteSpec[], info: OpenApiInfo): unknown {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
    const operation: Record<string, unknown> = {
      summary: route.summary,
      tags: [route.tag],
      operationId: `${route.method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? "").toUpperCase())}`,
      parameters: parameters(route),
      responses: {
        "200": {
          description: "success",
          content: successContent(route),
        },
        ...errorResponses(route),
      },
    };
    if (route.body !== undefined) {
      operation["requestBody"] = {
        required: true,
        content: { "application/json": { schema: plain(route.body) } },
      };
    }
    (paths[path] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: info.title,
      version: info.version,
      description:
        "Blixard's client API. Values are bytes: send `value` (UTF-8 text) or `valueBase64`; " +
        "responses carry `valueBase64` and, when the bytes are UTF-8, `value`; change events " +
        "(event stream, kv watch) carry one of them: `value` if UTF-8, else `valueBase64`. Keys are " +
        "URL-encoded in the path. Writes carry the session headers to apply exactly once. " +
        "Requests to a follower are forwarded to the leader (at most one hop).",
    },
    paths,
    components: { schemas: { ErrorBody: plain(ErrorBody) } },
  };
}
