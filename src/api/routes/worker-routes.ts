/** The worker routes: list and read workers, drain and undrain them. */
import { workerToJson } from "../orchestrator-convert.js";
import type { OrchestratorService } from "../orchestrator-service.js";
import type { RouteSpec } from "../route.js";
import { ReadQuery } from "../schema/kv.js";
import {
  DrainQuery,
  DrainedWorkerJson,
  WorkerJson,
  WorkerParams,
  WorkersResponse,
} from "../schema/orchestrator.js";
import { nodeIdParam, readOptions, writeOptions } from "./orchestrator-request.js";

/** The worker routes over `service`. */
export function workerRoutes(service: OrchestratorService): RouteSpec[] {
  const tag = "workers";
  const drain = (draining: boolean): RouteSpec => ({
    method: "POST",
    url: `/v1/workers/:id/${draining ? "drain" : "undrain"}`,
    tag,
    summary: draining
      ? "Drain a worker: nothing new is placed on it, its VMs and tasks move to other workers (running tasks may finish there until ?deadlineMs), then it is drained"
      : "Put a drained worker back in service",
    params: WorkerParams,
    ...(draining ? { querystring: DrainQuery } : {}),
    response: draining ? DrainedWorkerJson : WorkerJson,
    permission: { resource: "worker", access: "manage" },
    sessioned: true,
    forwardToLeader: true,
    errors: ["NOT_FOUND", "NOT_LEADER", "CONFLICT", "INVALID_ARGUMENT"],
    handler: async (context) => {
      const deadline = context.query["deadlineMs"];
      const { worker, moved } = await service.drainWorker(nodeIdParam(context), draining, {
        ...writeOptions(context),
        ...(typeof deadline === "string" ? { deadlineMs: Number(deadline) } : {}),
      });
      return draining ? { ...workerToJson(worker), moved: { ...moved } } : workerToJson(worker);
    },
  });
  return [
    {
      method: "GET",
      url: "/v1/workers",
      tag,
      summary: "Every registered worker: capacity, allocation, features and status",
      querystring: ReadQuery,
      response: WorkersResponse,
      permission: { resource: "worker", access: "read" },
      forwardToLeader: true,
      errors: ["NOT_LEADER"],
      handler: async (context) => ({
        workers: (await service.listWorkers(readOptions(context))).map(workerToJson),
      }),
    },
    {
      method: "GET",
      url: "/v1/workers/:id",
      tag,
      summary: "One worker (404 NOT_FOUND if the node never registered)",
      params: WorkerParams,
      querystring: ReadQuery,
      response: WorkerJson,
      permission: { resource: "worker", access: "read" },
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER"],
      handler: async (context) =>
        workerToJson(await service.getWorker(nodeIdParam(context), readOptions(context))),
    },
    drain(true),
    drain(false),
  ];
}
