/** The cluster routes: status, members, membership changes and leadership transfer. */
import { configToJson, memberToJson, parsePositiveInteger, statusToJson } from "../convert.js";
import type { RequestContext, RouteSpec } from "../route.js";
import {
  AddMemberBody,
  ConfigResponse,
  MemberIdParams,
  MembersResponse,
  StatusResponse,
  ReplaceMemberBody,
  TransferLeaderBody,
  TransferLeaderResponse,
} from "../schema/cluster.js";
import type { BlixardNodeService } from "../service.js";
import { MIN_PROTOCOL_VERSION } from "../../transport/codec.js";

const OPERATOR = { resource: "cluster", access: "operator" } as const;

function memberId(context: RequestContext): number {
  return parsePositiveInteger(context.params["id"], "member id");
}

/** The cluster routes over `service`; `version` is this node's software version. */
export function clusterRoutes(service: BlixardNodeService, version = "0.0.0"): RouteSpec[] {
  const tag = "cluster";
  const changeErrors = ["NOT_LEADER", "NOT_FOUND", "CONFLICT", "UNAVAILABLE", "TIMEOUT"];
  return [
    {
      method: "GET",
      url: "/v1/cluster/status",
      tag,
      summary: "This node's raft status (term, role, leader, indexes, configuration)",
      response: StatusResponse,
      permission: { resource: "cluster", access: "read" },
      handler: () => {
        const status = service.status();
        return {
          ...statusToJson(status),
          version,
          protocolVersion: status.protocolVersion,
          minProtocolVersion: MIN_PROTOCOL_VERSION,
        };
      },
    },
    {
      method: "GET",
      url: "/v1/cluster/members",
      tag,
      summary: "The members of the configuration this node knows, with their addresses",
      response: MembersResponse,
      permission: { resource: "cluster", access: "read" },
      handler: () => {
        const status = service.status();
        return {
          leader: status.leader ?? null,
          joint: status.config.votersOutgoing.length > 0,
          members: service.members().map(memberToJson),
        };
      },
    },
    {
      method: "POST",
      url: "/v1/cluster/members",
      tag,
      summary: "Add a learner (it receives the log but does not vote until promoted)",
      body: AddMemberBody,
      response: ConfigResponse,
      // An operator may add anyone; a node (by its certificate) may add itself.
      permission: (request) => {
        const id = (request.body as { id?: unknown } | null | undefined)?.id;
        return {
          resource: "cluster",
          access: "join",
          nodeId: typeof id === "number" && Number.isSafeInteger(id) && id > 0 ? id : 0,
        };
      },
      forwardToLeader: true,
      errors: changeErrors,
      handler: async (context) => {
        const body = context.body as AddMemberBody;
        const config = await service.addLearner(body, context.call);
        return { config: configToJson(config) };
      },
    },
    {
      method: "POST",
      url: "/v1/cluster/members/:id/promote",
      tag,
      summary: "Promote a caught-up learner to voter",
      params: MemberIdParams,
      response: ConfigResponse,
      permission: OPERATOR,
      forwardToLeader: true,
      errors: changeErrors,
      handler: async (context) => ({
        config: configToJson(await service.promote(memberId(context), context.call)),
      }),
    },
    {
      method: "DELETE",
      url: "/v1/cluster/members/:id",
      tag,
      summary: "Remove a member (voter or learner)",
      params: MemberIdParams,
      response: ConfigResponse,
      permission: OPERATOR,
      forwardToLeader: true,
      errors: changeErrors,
      handler: async (context) => ({
        config: configToJson(await service.removeMember(memberId(context), context.call)),
      }),
    },
    {
      method: "POST",
      url: "/v1/cluster/replace",
      tag,
      summary:
        "Promote a caught-up learner and remove a member in one joint-consensus change; answers with the joint configuration",
      body: ReplaceMemberBody,
      response: ConfigResponse,
      permission: OPERATOR,
      forwardToLeader: true,
      errors: changeErrors,
      handler: async (context) => {
        const { remove, promote } = context.body as ReplaceMemberBody;
        return { config: configToJson(await service.replaceMember(remove, promote, context.call)) };
      },
    },
    {
      method: "POST",
      url: "/v1/cluster/transfer-leader",
      tag,
      summary: "Hand leadership to a voter; answers once it leads",
      body: TransferLeaderBody,
      response: TransferLeaderResponse,
      permission: OPERATOR,
      forwardToLeader: true,
      errors: changeErrors,
      handler: async (context) => {
        const { id } = context.body as TransferLeaderBody;
        await service.transferLeader(id, context.call);
        return { leader: id };
      },
    },
  ];
}
