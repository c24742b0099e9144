/**
 * The streaming routes: `GET /v1/events` (every applied change by topic, from a raft index) and
 * `GET /v1/kv/watch` (kv puts and deletes of a key or prefix, from a revision, etcd style). Both
 * are Server-Sent Events (see `events/sse-stream.ts` for the wire format), served by any node
 * from its own applied state; a kv watch is written in the binary format of
 * `common/watch-wire.ts` instead when the request accepts it (the SDK's `watch()` does).
 */
import { InvalidArgumentError } from "../../common/errors.js";
import { WATCH_BINARY_MEDIA_TYPE } from "../../common/watch-wire.js";
import type { Permission } from "../../statemachine/acl/policy.js";
import type { ChangeFeed } from "../events/change-feed.js";
import { TOPICS, type Topic } from "../events/feed-event.js";
import { serveSseStream, type NodeView, type SseStreamOptions } from "../events/sse-stream.js";
import {
  StreamBody,
  type RequestContext,
  type RouteSpec,
  type UncheckedRequest,
} from "../route.js";
import {
  EventsChangeData,
  EventsQuery,
  KvWatchChangeData,
  KvWatchQuery,
} from "../schema/events.js";

/** What the stream routes need of the node. */
export interface EventRouteOptions {
  readonly feed: ChangeFeed;
  /** The node's leader and term, for heartbeats. */
  readonly node: () => NodeView;
  /** Heartbeat / progress interval. Default `DEFAULT_HEARTBEAT_MS`. */
  readonly heartbeatMs?: number;
  /** Entries a consumer may lag before it is cut off. Default `DEFAULT_MAX_LAG_RECORDS`. */
  readonly maxLagRecords?: number;
}

/** The permission that reads each topic. */
const TOPIC_PERMISSION: Readonly<Record<Topic, Permission>> = {
  kv: { resource: "kv", access: "read", key: "" },
  task: { resource: "task", access: "read" },
  vm: { resource: "vm", access: "read" },
  worker: { resource: "worker", access: "read" },
  cluster: { resource: "cluster", access: "read" },
};

/** The topics of a `topic=a,b` query (all of them when absent). Throws `InvalidArgumentError`. */
export function parseTopics(text: string | undefined): ReadonlySet<Topic> {
  if (text === undefined || text === "") return new Set(TOPICS);
  const topics = new Set<Topic>();
  for (const name of text.split(",")) {
    if (!(TOPICS as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(`unknown topic ${name}; topics are ${TOPICS.join(", ")}`);
    }
    topics.add(name as Topic);
  }
  return topics;
}

/** A positive integer from a query value or the `Last-Event-ID` header (+1), else undefined. */
function startPoint(context: RequestContext, name: string): number | undefined {
  const text = context.query[name];
  if (text !== undefined) return Number(text);
  const lastEventId = context.headers?.["last-event-id"];
  if (typeof lastEventId === "string" && /^[0-9]{1,15}$/.test(lastEventId)) {
    return Number(lastEventId) + 1;
  }
  return undefined;
}

/** `binary` when the request's `Accept` names the binary watch format, else `sse`. */
function watchFormat(context: RequestContext): "sse" | "binary" {
  const accept = context.headers?.["accept"];
  return typeof accept === "string" && accept.includes(WATCH_BINARY_MEDIA_TYPE) ? "binary" : "sse";
}

/** The kv read permission of a watch: on its key, or on its prefix (all keys: ""). */
function watchPermission(request: UncheckedRequest): Permission {
  const key = request.query["key"];
  const prefix = request.query["prefix"];
  return {
    resource: "kv",
    access: "read",
    key: typeof key === "string" ? key : typeof prefix === "string" ? prefix : "",
  };
}

/** The streaming routes over `options.feed`. */
export function eventRoutes(options: EventRouteOptions): RouteSpec[] {
  const tag = "events";
  const { feed } = options;
  const stream = (
    cursor: number,
    rest: Pick<
      SseStreamOptions,
      "mode" | "filter" | "filterKey" | "minRevision" | "minIndex" | "format"
    >,
  ): StreamBody =>
    new StreamBody((response) =>
      serveSseStream(response, {
        feed,
        cursor,
        node: options.node,
        ...rest,
        ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
        ...(options.maxLagRecords === undefined ? {} : { maxLagRecords: options.maxLagRecords }),
      }),
    );
  return [
    {
      method: "GET",
      url: "/v1/events",
      tag,
      summary:
        "Server-Sent Events of every applied change of the topics, in log order, from a raft index (410 GONE if no longer kept)",
      querystring: EventsQuery,
      changeData: EventsChangeData,
      // Each requested topic is checked in the handler.
      permission: "authenticated",
      errors: ["GONE", "PERMISSION_DENIED"],
      handler: (context) => {
        const topics = parseTopics(context.query["topic"]);
        const authorize = context.authorize;
        if (authorize === undefined) throw new InvalidArgumentError("no authorizer");
        for (const topic of topics) authorize(TOPIC_PERMISSION[topic]);
        const key = context.query["key"];
        const from = startPoint(context, "from");
        const cursor = feed.seekIndex(from);
        return stream(cursor, {
          mode: "events",
          minIndex: from ?? 0,
          filter: (event) => topics.has(event.topic) && (key === undefined || event.key === key),
          filterKey: JSON.stringify([[...topics].sort(), key ?? null]),
        });
      },
    },
    {
      method: "GET",
      url: "/v1/kv/watch",
      tag,
      summary:
        "Server-Sent Events of the puts and deletes of a key or prefix in revision order, from a revision (410 GONE if compacted), with progress notifications; with `Accept: application/vnd.blixard.watch`, the same messages as binary frames (the SDK's format; see the README)",
      querystring: KvWatchQuery,
      changeData: KvWatchChangeData,
      permission: watchPermission,
      errors: ["GONE", "INVALID_ARGUMENT"],
      handler: (context) => {
        const key = context.query["key"];
        const prefix = context.query["prefix"];
        if (key !== undefined && prefix !== undefined) {
          throw new InvalidArgumentError("give key or prefix, not both");
        }
        const fromRevision = startPoint(context, "fromRevision");
        const cursor = feed.seekRevision(fromRevision);
        const matches =
          key !== undefined ? (k: string) => k === key : (k: string) => k.startsWith(prefix ?? "");
        return stream(cursor, {
          mode: "watch",
          format: watchFormat(context),
          minRevision: fromRevision ?? 0,
          filter: (event) => event.topic === "kv" && matches(event.key),
          filterKey: JSON.stringify(key !== undefined ? ["key", key] : ["prefix", prefix ?? ""]),
        });
      },
    },
  ];
}
