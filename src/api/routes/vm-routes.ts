/**
 * The VM routes: create, list, read, start, stop, migrate and delete VMs; read their console logs;
 * run a command in a guest.
 */
import { UnavailableError } from "../../common/errors.js";
import { vmSpecFromRequest, vmToJson } from "../orchestrator-convert.js";
import type { OrchestratorService } from "../orchestrator-service.js";
import { serveLogStream } from "../events/log-stream.js";
import { StreamBody, type RequestContext, type RouteSpec } from "../route.js";
import { ReadQuery } from "../schema/kv.js";
import {
  CreateVmBody,
  MigrateVmBody,
  VmDeletedResponse,
  VmExecBody,
  VmExecResponse,
  VmJson,
  VmLogQuery,
  VmLogResponse,
  VmParams,
  VmsResponse,
} from "../schema/orchestrator.js";
import { param, readOptions, writeOptions } from "./orchestrator-request.js";

function vmName(context: RequestContext): string {
  return param(context, "name");
}

/** The VM routes over `service`. */
export function vmRoutes(service: OrchestratorService): RouteSpec[] {
  const tag = "vms";
  const writeErrors = ["NOT_FOUND", "NOT_LEADER", "CONFLICT"];
  return [
    {
      method: "POST",
      url: "/v1/vms",
      tag,
      summary:
        "Create a VM (desired running unless told stopped); 409 CONFLICT if the name is taken",
      body: CreateVmBody,
      response: VmJson,
      permission: { resource: "vm", access: "manage" },
      sessioned: true,
      forwardToLeader: true,
      errors: ["TOO_LARGE", "NOT_LEADER", "CONFLICT", "OVERLOADED"],
      handler: async (context) => {
        const body = context.body as CreateVmBody;
        const vm = await service.createVm(
          body.name,
          vmSpecFromRequest(body.spec),
          body.desired ?? "running",
          writeOptions(context),
        );
        return vmToJson(vm);
      },
    },
    {
      method: "GET",
      url: "/v1/vms",
      tag,
      summary: "Every VM, by name: desired and observed state, node, restarts",
      querystring: ReadQuery,
      response: VmsResponse,
      permission: { resource: "vm", access: "read" },
      forwardToLeader: true,
      errors: ["NOT_LEADER"],
      handler: async (context) => ({
        vms: (await service.listVms(readOptions(context))).map(vmToJson),
      }),
    },
    {
      method: "GET",
      url: "/v1/vms/:name",
      tag,
      summary: "One VM",
      params: VmParams,
      querystring: ReadQuery,
      response: VmJson,
      permission: { resource: "vm", access: "read" },
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER"],
      handler: async (context) =>
        vmToJson(await service.getVm(vmName(context), readOptions(context))),
    },
    {
      method: "GET",
      url: "/v1/vms/:name/logs",
      tag,
      summary:
        "A VM's serial console log, from the node that runs it (any node forwards there): the last lines, or what follows a byte offset; with follow=true, Server-Sent Events of the last lines and then what is written, until the VM is deleted or moves",
      params: VmParams,
      querystring: VmLogQuery,
      response: VmLogResponse,
      permission: { resource: "vm", access: "read" },
      errors: ["NOT_FOUND", "UNAVAILABLE"],
      handler: async (context) => {
        if (service.vmLog === undefined) {
          throw new UnavailableError("this node does not serve VM console logs");
        }
        const query = context.query as VmLogQuery;
        if (query.follow === "true") {
          if (service.followVmLog === undefined) {
            throw new UnavailableError("this node does not serve VM console logs");
          }
          const source = await service.followVmLog(
            vmName(context),
            query.tail === undefined ? {} : { tailLines: Number(query.tail) },
            context.call,
          );
          return new StreamBody((response) => serveLogStream(response, source));
        }
        return service.vmLog(
          vmName(context),
          {
            ...(query.offset === undefined ? {} : { offset: Number(query.offset) }),
            ...(query.tail === undefined ? {} : { tailLines: Number(query.tail) }),
          },
          context.call,
        );
      },
    },
    {
      method: "POST",
      url: "/v1/vms/:name/exec",
      tag,
      summary:
        "Run a shell command in a qemu VM's guest through the Blixard guest agent, on the node that runs it (any node forwards there): its exit code and output. Runs once: not retried",
      params: VmParams,
      body: VmExecBody,
      response: VmExecResponse,
      permission: { resource: "vm", access: "manage" },
      errors: ["NOT_FOUND", "INVALID_ARGUMENT", "CONFLICT", "UNAVAILABLE", "TIMEOUT"],
      handler: async (context) => {
        if (service.execInVm === undefined) {
          throw new UnavailableError("this node cannot run commands in VMs");
        }
        const body = context.body as VmExecBody;
        return service.execInVm(
          vmName(context),
          {
            command: body.command,
            ...(body.timeoutMs === undefined ? {} : { timeoutMs: body.timeoutMs }),
          },
          context.call,
        );
      },
    },
    {
      method: "POST",
      url: "/v1/vms/:name/start",
      tag,
      summary: "Set a VM's desired state to running",
      params: VmParams,
      response: VmJson,
      permission: { resource: "vm", access: "manage" },
      sessioned: true,
      forwardToLeader: true,
      errors: writeErrors,
      handler: async (context) =>
        vmToJson(await service.startVm(vmName(context), writeOptions(context))),
    },
    {
      method: "POST",
      url: "/v1/vms/:name/stop",
      tag,
      summary: "Set a VM's desired state to stopped",
      params: VmParams,
      response: VmJson,
      permission: { resource: "vm", access: "manage" },
      sessioned: true,
      forwardToLeader: true,
      errors: writeErrors,
      handler: async (context) =>
        vmToJson(await service.stopVm(vmName(context), writeOptions(context))),
    },
    {
      method: "POST",
      url: "/v1/vms/:name/migrate",
      tag,
      summary:
        "Live-migrate a running qemu VM to another node (targetNodeId, or one the scheduler picks): the VM is migrating until the target reports its guest running, and rolls back to its node if the migration fails",
      params: VmParams,
      body: MigrateVmBody,
      response: VmJson,
      permission: { resource: "vm", access: "manage" },
      sessioned: true,
      forwardToLeader: true,
      errors: ["NOT_FOUND", "INVALID_ARGUMENT", "NOT_LEADER", "CONFLICT"],
      handler: async (context) => {
        const body = (context.body ?? {}) as MigrateVmBody;
        return vmToJson(
          await service.migrateVm(vmName(context), body.targetNodeId, writeOptions(context)),
        );
      },
    },
    {
      method: "DELETE",
      url: "/v1/vms/:name",
      tag,
      summary: "Delete a VM; its node stops it",
      params: VmParams,
      response: VmDeletedResponse,
      permission: { resource: "vm", access: "manage" },
      sessioned: true,
      forwardToLeader: true,
      errors: writeErrors,
      handler: async (context) => {
        await service.deleteVm(vmName(context), writeOptions(context));
        return { deleted: true, name: vmName(context) };
      },
    },
  ];
}
