/** Liveness, readiness, Prometheus metrics and the OpenAPI document. */
import { UnavailableError } from "../../common/errors.js";
import { RawBody, type RouteSpec } from "../route.js";
import { HealthResponse, ReadyResponse } from "../schema/cluster.js";
import type { BlixardNodeService } from "../service.js";

/** Sources of the documents the system routes serve. */
export interface SystemRouteSources {
  /** Prometheus text exposition of the node's metrics. */
  readonly metricsText: () => Promise<string>;
  /** The OpenAPI document (built once the route table is complete). */
  readonly openApi: () => unknown;
}

/** The Prometheus text format's media type. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The system routes over `service`. */
export function systemRoutes(
  service: BlixardNodeService,
  sources: SystemRouteSources,
): RouteSpec[] {
  const tag = "system";
  return [
    {
      method: "GET",
      url: "/healthz",
      tag,
      permission: "open",
      summary: "Liveness: 200 while the process serves",
      response: HealthResponse,
      handler: () => ({ status: "ok", id: service.nodeId }),
    },
    {
      method: "GET",
      url: "/readyz",
      tag,
      permission: "open",
      summary: "Readiness: 200 once a leader is known and the node runs, else 503 UNAVAILABLE",
      response: ReadyResponse,
      errors: ["UNAVAILABLE"],
      handler: () => {
        const readiness = service.readiness();
        if (!readiness.ready) throw new UnavailableError(`not ready: ${readiness.reason}`);
        return { ready: true, leader: readiness.leader };
      },
    },
    {
      method: "GET",
      url: "/metrics",
      tag,
      permission: "open",
      summary: "Prometheus metrics (text exposition format)",
      handler: async () => new RawBody(PROMETHEUS_CONTENT_TYPE, await sources.metricsText()),
    },
    {
      method: "GET",
      url: "/openapi.json",
      tag,
      permission: "open",
      summary: "This API's OpenAPI 3.1 document",
      handler: () => sources.openApi(),
    },
  ];
}
