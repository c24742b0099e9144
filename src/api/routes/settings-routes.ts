/** The orchestrator settings routes: read and replace the cluster-wide settings. */
import { settingsToJson } from "../orchestrator-convert.js";
import type { OrchestratorService } from "../orchestrator-service.js";
import type { RouteSpec } from "../route.js";
import { ReadQuery } from "../schema/kv.js";
import { OrchestratorSettingsJson } from "../schema/orchestrator.js";
import { readOptions, writeOptions } from "./orchestrator-request.js";

/** The settings routes over `service`. */
export function settingsRoutes(service: OrchestratorService): RouteSpec[] {
  const tag = "settings";
  return [
    {
      method: "GET",
      url: "/v1/settings/orchestrator",
      tag,
      summary: "The orchestrator's cluster-wide settings (placement strategy)",
      querystring: ReadQuery,
      response: OrchestratorSettingsJson,
      permission: { resource: "cluster", access: "read" },
      forwardToLeader: true,
      errors: ["NOT_LEADER"],
      handler: async (context) => settingsToJson(await service.getSettings(readOptions(context))),
    },
    {
      method: "PUT",
      url: "/v1/settings/orchestrator",
      tag,
      summary: "Replace the orchestrator's settings; placement applies to work placed from now on",
      body: OrchestratorSettingsJson,
      response: OrchestratorSettingsJson,
      permission: { resource: "cluster", access: "operator" },
      sessioned: true,
      forwardToLeader: true,
      errors: ["NOT_LEADER", "CONFLICT"],
      handler: async (context) =>
        settingsToJson(
          await service.setSettings(
            context.body as OrchestratorSettingsJson,
            writeOptions(context),
          ),
        ),
    },
  ];
}
