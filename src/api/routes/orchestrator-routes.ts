/** Every orchestrator route: workers, tasks, VMs, settings and agent reports. */
import type { AgentProtocol } from "../agents/agent-hub.js";
import type { OrchestratorService } from "../orchestrator-service.js";
import type { RouteSpec } from "../route.js";
import { agentRoutes } from "./agent-routes.js";
import { settingsRoutes } from "./settings-routes.js";
import { taskRoutes } from "./task-routes.js";
import { vmRoutes } from "./vm-routes.js";
import { workerRoutes } from "./worker-routes.js";

/** The orchestrator routes over `service` (and the agent-only protocol over `agents`). */
export function orchestratorRoutes(
  service: OrchestratorService,
  agents?: AgentProtocol,
): RouteSpec[] {
  return [
    ...workerRoutes(service),
    ...taskRoutes(service),
    ...vmRoutes(service),
    ...settingsRoutes(service),
    ...agentRoutes(service, agents),
  ];
}
