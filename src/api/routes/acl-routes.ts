/** The ACL routes: bootstrap, policies, tokens, certificate bindings and whoami. */
import type { RaftAclService } from "../acl-service.js";
import type { Identity } from "../auth/identity.js";
import { formatRule } from "../../statemachine/acl/policy.js";
import type { AclRule } from "../../statemachine/acl/types.js";
import type { RequestContext, RouteSpec } from "../route.js";
import {
  AclDeletedResponse,
  CertBindingJson,
  CertBindingParams,
  CertBindingsResponse,
  CreateTokenBody,
  CreatedTokenResponse,
  PoliciesResponse,
  PolicyJson,
  PolicyParams,
  PutCertBindingBody,
  PutPolicyBody,
  TokenJson,
  TokenParams,
  TokensResponse,
  WhoAmIResponse,
} from "../schema/acl.js";
import { param, readOptions, writeOptions } from "./orchestrator-request.js";

const READ = { resource: "acl", access: "read" } as const;
const MANAGE = { resource: "acl", access: "manage" } as const;

/** What whoami says of an identity. */
export function whoAmI(identity: Identity | undefined): WhoAmIResponse {
  const rules = (list: readonly AclRule[]) => list.map(formatRule);
  switch (identity?.kind) {
    case "token":
      return {
        kind: "token",
        accessorId: identity.accessorId,
        name: identity.name,
        management: identity.management,
        policies: [...identity.policies],
        rules: rules(identity.rules),
      };
    case "certificate":
      return {
        kind: "certificate",
        commonName: identity.commonName,
        management: false,
        policies: [...identity.policies],
        rules: rules(identity.rules),
      };
    case "node":
      return {
        kind: "node",
        nodeId: identity.nodeId,
        management: false,
        policies: [],
        rules: [
          `node:report:${identity.nodeId}`,
          `cluster:join:${identity.nodeId}`,
          "cluster:read",
        ],
      };
    default:
      return { kind: "anonymous", management: true, policies: [], rules: [] };
  }
}

/** The ACL routes over `service`. */
export function aclRoutes(service: RaftAclService): RouteSpec[] {
  const tag = "acl";
  const name = (context: RequestContext) => param(context, "name");
  return [
    {
      method: "POST",
      url: "/v1/acl/bootstrap",
      tag,
      summary:
        "Create the first management token (open, succeeds once; 409 CONFLICT after). The secret is shown only here",
      response: CreatedTokenResponse,
      permission: "open",
      sessioned: true,
      forwardToLeader: true,
      errors: ["CONFLICT", "NOT_LEADER"],
      handler: (context) => service.bootstrap(writeOptions(context)),
    },
    {
      method: "GET",
      url: "/v1/acl/whoami",
      tag,
      summary: "Who this request is authenticated as, and what it may do",
      response: WhoAmIResponse,
      permission: "authenticated",
      handler: (context) => whoAmI(context.identity),
    },
    {
      method: "GET",
      url: "/v1/acl/policies",
      tag,
      summary: "Every policy",
      response: PoliciesResponse,
      permission: READ,
      forwardToLeader: true,
      errors: ["NOT_LEADER"],
      handler: async (context) => ({ policies: await service.listPolicies(readOptions(context)) }),
    },
    {
      method: "GET",
      url: "/v1/acl/policies/:name",
      tag,
      summary: "One policy",
      params: PolicyParams,
      response: PolicyJson,
      permission: READ,
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER"],
      handler: (context) => service.getPolicy(name(context), readOptions(context)),
    },
    {
      method: "PUT",
      url: "/v1/acl/policies/:name",
      tag,
      summary: "Create or replace a policy",
      params: PolicyParams,
      body: PutPolicyBody,
      response: PolicyJson,
      permission: MANAGE,
      sessioned: true,
      forwardToLeader: true,
      errors: ["NOT_LEADER", "OVERLOADED"],
      handler: (context) => {
        const body = context.body as PutPolicyBody;
        return service.upsertPolicy(
          {
            name: name(context),
            ...(body.description === undefined ? {} : { description: body.description }),
            rules: body.rules as AclRule[],
          },
          writeOptions(context),
        );
      },
    },
    {
      method: "DELETE",
      url: "/v1/acl/policies/:name",
      tag,
      summary: "Delete a policy (tokens naming it lose what it granted)",
      params: PolicyParams,
      response: AclDeletedResponse,
      permission: MANAGE,
      sessioned: true,
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER"],
      handler: async (context) => {
        await service.deletePolicy(name(context), writeOptions(context));
        return { deleted: true };
      },
    },
    {
      method: "POST",
      url: "/v1/acl/tokens",
      tag,
      summary: "Create a token; the answer holds its secret, shown only this once",
      body: CreateTokenBody,
      response: CreatedTokenResponse,
      permission: MANAGE,
      sessioned: true,
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER", "OVERLOADED"],
      handler: (context) =>
        service.createToken(context.body as CreateTokenBody, writeOptions(context)),
    },
    {
      method: "GET",
      url: "/v1/acl/tokens",
      tag,
      summary: "Every token, without secrets",
      response: TokensResponse,
      permission: READ,
      forwardToLeader: true,
      errors: ["NOT_LEADER"],
      handler: async (context) => ({ tokens: await service.listTokens(readOptions(context)) }),
    },
    {
      method: "GET",
      url: "/v1/acl/tokens/:accessorId",
      tag,
      summary: "One token, without its secret",
      params: TokenParams,
      response: TokenJson,
      permission: READ,
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER"],
      handler: (context) => service.getToken(param(context, "accessorId"), readOptions(context)),
    },
    {
      method: "DELETE",
      url: "/v1/acl/tokens/:accessorId",
      tag,
      summary: "Revoke a token: refused from the next request on, on every node",
      params: TokenParams,
      response: AclDeletedResponse,
      permission: MANAGE,
      sessioned: true,
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER"],
      handler: async (context) => {
        await service.revokeToken(param(context, "accessorId"), writeOptions(context));
        return { deleted: true };
      },
    },
    {
      method: "GET",
      url: "/v1/acl/cert-bindings",
      tag,
      summary: "Every client-certificate binding (common name → policies)",
      response: CertBindingsResponse,
      permission: READ,
      forwardToLeader: true,
      errors: ["NOT_LEADER"],
      handler: async (context) => ({
        bindings: await service.listCertBindings(readOptions(context)),
      }),
    },
    {
      method: "PUT",
      url: "/v1/acl/cert-bindings/:commonName",
      tag,
      summary: "Bind a client certificate's common name to policies",
      params: CertBindingParams,
      body: PutCertBindingBody,
      response: CertBindingJson,
      permission: MANAGE,
      sessioned: true,
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER", "OVERLOADED"],
      handler: (context) => {
        const body = context.body as PutCertBindingBody;
        return service.setCertBinding(
          {
            commonName: param(context, "commonName"),
            ...(body.description === undefined ? {} : { description: body.description }),
            policies: body.policies,
          },
          writeOptions(context),
        );
      },
    },
    {
      method: "DELETE",
      url: "/v1/acl/cert-bindings/:commonName",
      tag,
      summary: "Remove a client certificate's binding",
      params: CertBindingParams,
      response: AclDeletedResponse,
      permission: MANAGE,
      sessioned: true,
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER"],
      handler: async (context) => {
        await service.deleteCertBinding(param(context, "commonName"), writeOptions(context));
        return { deleted: true };
      },
    },
  ];
}
