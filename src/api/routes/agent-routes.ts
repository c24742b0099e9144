/**
 * The agents' routes. Reports (`POST /v1/agent/reports`): how an agent (in a server's process or
 * agent-only) and the leader's liveness monitor hand their reports to the cluster; sent to any
 * server, forwarded to the leader like every write. The protocol of agent-only workers (see
 * `api/agents/agent-hub.ts`): `GET /v1/agent/assignments` (a long poll any server answers from
 * its applied state) and `POST /v1/agent/heartbeat` (forwarded to the leader, kept in memory).
 * Each needs `node:report:N` for the node N it names: a node certificate holds it for its own id.
 */
import { Type } from "@sinclair/typebox";
import { InvalidArgumentError } from "../../common/errors.js";
import type { AgentProtocol } from "../agents/agent-hub.js";
import { MAX_AGENT_WAIT_MS } from "../agents/assignment-waiters.js";
import { parsePositiveInteger } from "../convert.js";
import type { OrchestratorService } from "../orchestrator-service.js";
import type { RequestContext, RouteSpec, UncheckedRequest } from "../route.js";
import type { Permission } from "../../statemachine/acl/policy.js";
import { writeOptions } from "./orchestrator-request.js";
import { WAIT_ANSWER_MARGIN_MS } from "./task-routes.js";

import { MAX_RELAY_BATCH } from "../agents/heartbeat-relay.js";
import { MAX_DISK_LOOKUP_NAMES } from "../../orchestrator/agent/disk-verdict.js";
import { ReportResponse, type ReportItemJson } from "../schema/orchestrator.js";
import { MAX_AGENT_REPORTS_PER_BATCH } from "../../statemachine/orchestrator/limits.js";
import type { BatchItemOutcome } from "../../statemachine/orchestrator/commands.js";

/** The body of a report: the command as JSON (checked by the model's own reader). */
const AgentReport = Type.Object(
  { command: Type.Object({ type: Type.String() }, { additionalProperties: true }) },
  { additionalProperties: false },
);

/** The body of a heartbeat. */
const HeartbeatBody = Type.Object(
  { nodeId: Type.Integer({ minimum: 1 }) },
  { additionalProperties: false },
);

/** The body of a relayed batch of heartbeats. */
const RelayBody = Type.Object(
  {
    nodeIds: Type.Array(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }), {
      maxItems: MAX_RELAY_BATCH,
    }),
  },
  { additionalProperties: false },
);

/** The body of a disk lookup. */
const DisksBody = Type.Object(
  {
    nodeId: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    names: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
      maxItems: MAX_DISK_LOOKUP_NAMES,
    }),
  },
  { additionalProperties: false },
);

/** The answer of a disk lookup. */
const DisksResponse = Type.Object(
  {
    disks: Type.Array(
      Type.Object({
        name: Type.String(),
        verdict: Type.Union([
          Type.Literal("keep"),
          Type.Literal("deleted"),
          Type.Literal("elsewhere"),
        ]),
      }),
    ),
  },
  { additionalProperties: false },
);

/** The query of an assignment poll (strings: query values are not coerced). */
const AssignmentsQuery = Type.Object(
  {
    nodeId: Type.String({ pattern: "^[1-9][0-9]{0,15}$" }),
    after: Type.Optional(Type.String({ pattern: "^(0|[1-9][0-9]{0,15})$" })),
    waitMs: Type.Optional(Type.String({ pattern: "^(0|[1-9][0-9]{0,15})$" })),
  },
  { additionalProperties: false },
);

/** One report's outcome as the route answers it (the model's own shape, without undefined). */
function reportItemJson(item: BatchItemOutcome): ReportItemJson {
  if (!item.ok) return { ok: false, id: item.id, code: item.code, message: item.message };
  return {
    ok: true,
    id: item.id,
    status: item.status,
    nodeId: item.nodeId,
    ...(item.pendingReason === undefined ? {} : { pendingReason: item.pendingReason }),
  };
}

/** Node 0, which no one is, for a malformed id: the permission check then refuses. */
function nodePermission(nodeId: unknown): Permission {
  const id =
    typeof nodeId === "string" && /^[1-9][0-9]{0,15}$/.test(nodeId) ? Number(nodeId) : nodeId;
  return {
    resource: "node",
    access: "report",
    nodeId: typeof id === "number" && Number.isSafeInteger(id) && id > 0 ? id : 0,
  };
}

/** The wait an assignment poll asked for, ending before the request's deadline. */
function pollWaitMs(context: RequestContext): number {
  const text = context.query["waitMs"];
  const asked = text === undefined ? 0 : Number(text);
  if (asked > MAX_AGENT_WAIT_MS) {
    throw new InvalidArgumentError(`waitMs must be at most ${MAX_AGENT_WAIT_MS}, got ${asked}`);
  }
  const deadlineMs = context.call.timeoutMs ?? asked;
  const marginMs = Math.min(WAIT_ANSWER_MARGIN_MS, Math.floor(deadlineMs / 4));
  return Math.max(0, Math.min(asked, deadlineMs - marginMs));
}

/** The agent routes over `service`, and the agent-only protocol's over `agents` when given. */
export function agentRoutes(service: OrchestratorService, agents?: AgentProtocol): RouteSpec[] {
  const reports: RouteSpec = {
    method: "POST",
    url: "/v1/agent/reports",
    tag: "agent",
    summary:
      "For node agents: propose a report (registerWorker, taskStarted, taskFinished, vmObserved, " +
      "markWorkerOffline), or up to " +
      `${MAX_AGENT_REPORTS_PER_BATCH} reports of one node in one log entry (agentReports). ` +
      "Answered once applied; a batch with `items`, one outcome per report in order (applied, " +
      "or refused on its own with CONFLICT or NOT_FOUND: a stale report, drop it). A batch is " +
      "refused as a whole with INVALID_ARGUMENT while not every member can apply it (a rolling " +
      "upgrade; servers of the release before answer the same): send the reports one by one",
    body: AgentReport,
    response: ReportResponse,
    // Only node N may report about node N.
    permission: (request: UncheckedRequest) =>
      nodePermission(
        (request.body as { command?: { nodeId?: unknown } } | null | undefined)?.command?.nodeId,
      ),
    sessioned: true,
    forwardToLeader: true,
    errors: ["NOT_LEADER", "CONFLICT"],
    handler: async (context): Promise<ReportResponse> => {
      const answer = await service.report(
        (context.body as { command: unknown }).command,
        writeOptions(context),
      );
      return answer.items === undefined
        ? { accepted: true }
        : { accepted: true, items: answer.items.map(reportItemJson) };
    },
  };
  if (agents === undefined) return [reports];
  return [
    reports,
    {
      method: "GET",
      url: "/v1/agent/assignments",
      tag: "agent",
      summary:
        "For agent-only workers: node N's worker record, its assigned or running tasks (with " +
        "their secret environment) and its VMs, at the applied index `index`; answered once " +
        `they changed after index \`after\`, or after waitMs (at most ${MAX_AGENT_WAIT_MS}, ` +
        "capped by the request deadline). Served by any server from its applied state",
      querystring: AssignmentsQuery,
      permission: (request) => nodePermission(request.query["nodeId"]),
      errors: ["OVERLOADED", "CONFLICT"],
      handler: async (context) => {
        const nodeId = parsePositiveInteger(context.query["nodeId"] ?? "", "nodeId");
        const after = Number(context.query["after"] ?? "0");
        return agents.assignments(nodeId, after, pollWaitMs(context), context.call.signal);
      },
    },
    {
      method: "POST",
      url: "/v1/agent/heartbeat",
      tag: "agent",
      summary:
        "For agent-only workers: node N is alive. Kept in the leader's memory (never a log " +
        "entry); its liveness monitor marks a worker offline after --worker-dead-after-ms of silence",
      body: HeartbeatBody,
      response: Type.Object({ leaderId: Type.Integer(), workerDeadAfterMs: Type.Integer() }),
      permission: (request) =>
        nodePermission((request.body as { nodeId?: unknown } | null | undefined)?.nodeId),
      // A follower relays it to the leader in a batch (see `agents/heartbeat-relay.ts`); one
      // without a relay answers NOT_LEADER and the request is forwarded.
      forwardToLeader: true,
      errors: ["NOT_LEADER", "CONFLICT", "OVERLOADED"],
      audit: "refusals",
      handler: (context) => agents.heartbeat((context.body as { nodeId: number }).nodeId),
    },
    {
      method: "POST",
      url: "/v1/agent/disks",
      tag: "agent",
      summary:
        "For agent-only workers: what node N does with the disks it keeps for the VMs `names` " +
        `(at most ${MAX_DISK_LOOKUP_NAMES}), which its assignments do not show: \`keep\` (placed ` +
        "or arriving there, or its current disk is there), `deleted` (no such VM) or " +
        "`elsewhere` (its current disk is on another node: this copy is stale). Served by any " +
        "server from its applied state",
      body: DisksBody,
      response: DisksResponse,
      permission: (request) =>
        nodePermission((request.body as { nodeId?: unknown } | null | undefined)?.nodeId),
      errors: ["CONFLICT"],
      handler: (context) => {
        const body = context.body as { nodeId: number; names: string[] };
        return agents.disks(body.nodeId, body.names);
      },
    },
    {
      method: "POST",
      url: "/v1/agent/heartbeats",
      tag: "agent",
      summary:
        "For servers: the heartbeats of agent-only workers a follower received, relayed to the " +
        `leader in one batch (at most ${MAX_RELAY_BATCH} node ids). Leader only; needs a member's certificate`,
      body: RelayBody,
      response: Type.Object({ leaderId: Type.Integer(), workerDeadAfterMs: Type.Integer() }),
      permission: () => ({ resource: "cluster", access: "relay" }),
      errors: ["NOT_LEADER"],
      audit: "refusals",
      handler: (context) => agents.relayed((context.body as { nodeIds: number[] }).nodeIds),
    },
  ];
}
