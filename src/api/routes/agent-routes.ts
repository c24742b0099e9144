/**
 * The agents' route: how a node's agent (and the leader's liveness monitor) hands its reports to
 * the cluster. A report sent to any node is forwarded to the leader, like every write.
 */
import { Type } from "@sinclair/typebox";
import type { OrchestratorService } from "../orchestrator-service.js";
import type { RouteSpec } from "../route.js";
import { writeOptions } from "./orchestrator-request.js";

/** The body of a report: the command as JSON (checked by the model's own reader). */
const AgentReport = Type.Object(
  { command: Type.Object({ type: Type.String() }, { additionalProperties: true }) },
  { additionalProperties: false },
);

/** The agent routes over `service`. */
export function agentRoutes(service: OrchestratorService): RouteSpec[] {
  return [
    {
      method: "POST",
      url: "/v1/agent/reports",
      tag: "agent",
      summary:
        "For node agents: propose a report (registerWorker, taskStarted, taskFinished, vmObserved, markWorkerOffline)",
      body: AgentReport,
      response: Type.Object({ accepted: Type.Boolean() }),
      // Only node N may report about node N (node 0, which no one is, for a malformed body).
      permission: (request) => {
        const nodeId = (request.body as { command?: { nodeId?: unknown } } | null | undefined)
          ?.command?.nodeId;
        return {
          resource: "node",
          access: "report",
          nodeId:
            typeof nodeId === "number" && Number.isSafeInteger(nodeId) && nodeId > 0 ? nodeId : 0,
        };
      },
      sessioned: true,
      forwardToLeader: true,
      errors: ["NOT_LEADER", "CONFLICT"],
      handler: async (context) => {
        await service.report((context.body as { command: unknown }).command, writeOptions(context));
        return { accepted: true };
      },
    },
  ];
}
