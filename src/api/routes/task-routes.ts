/**
 * The task routes: submit, list, read, cancel, wait for (long-poll) and read the output of
 * tasks.
 */
import { InvalidArgumentError, UnavailableError } from "../../common/errors.js";
import { serveLogStream } from "../events/log-stream.js";
import { isTerminal, type TaskStatus } from "../../statemachine/orchestrator/index.js";
import { parsePositiveInteger } from "../convert.js";
import { taskLogsToJson, taskSpecFromRequest, taskToJson } from "../orchestrator-convert.js";
import type { OrchestratorService } from "../orchestrator-service.js";
import { StreamBody, type RequestContext, type RouteSpec } from "../route.js";
import {
  DEFAULT_WAIT_MS,
  MAX_WAIT_MS,
  SubmitTaskBody,
  SubmitTasksBody,
  SubmitTasksResponse,
  TaskJson,
  TaskListQuery,
  TaskListResponse,
  TaskLogsQuery,
  TaskLogsResponse,
  TaskParams,
  TaskReadQuery,
  TaskWaitQuery,
  TaskWaitResponse,
} from "../schema/orchestrator.js";
import { param, readOptions, writeOptions } from "./orchestrator-request.js";

/**
 * How long before the request's own deadline a long-poll answers "not yet", so the caller gets
 * that answer rather than a TIMEOUT (at most a quarter of a short deadline).
 */
export const WAIT_ANSWER_MARGIN_MS = 250;

const TASK_READ = { resource: "task", access: "read" } as const;

function taskId(context: RequestContext): string {
  return param(context, "id");
}

/** The long-poll of a wait request: what it asked for, ending before its deadline. */
function waitMs(context: RequestContext): number {
  const text = context.query["timeoutMs"];
  const asked = text === undefined ? DEFAULT_WAIT_MS : parsePositiveInteger(text, "timeoutMs");
  if (asked > MAX_WAIT_MS) {
    throw new InvalidArgumentError(`timeoutMs must be at most ${MAX_WAIT_MS}, got ${asked}`);
  }
  const deadlineMs = context.call.timeoutMs ?? asked;
  const marginMs = Math.min(WAIT_ANSWER_MARGIN_MS, Math.floor(deadlineMs / 4));
  return Math.max(0, Math.min(asked, deadlineMs - marginMs));
}

/** The task routes over `service`. */
export function taskRoutes(service: OrchestratorService): RouteSpec[] {
  const tag = "tasks";
  return [
    {
      method: "POST",
      url: "/v1/tasks",
      tag,
      summary:
        "Submit a task; answers with it (and its new id) once applied: placed, or pending with a reason",
      body: SubmitTaskBody,
      response: TaskJson,
      permission: { resource: "task", access: "submit" },
      sessioned: true,
      forwardToLeader: true,
      errors: ["TOO_LARGE", "NOT_LEADER", "OVERLOADED", "CONFLICT"],
      handler: async (context) => {
        const body = context.body as SubmitTaskBody;
        const task = await service.submitTask(
          taskSpecFromRequest(body.spec),
          writeOptions(context),
        );
        return taskToJson(task);
      },
    },
    {
      method: "POST",
      url: "/v1/tasks/batch",
      tag,
      summary:
        "Submit many tasks in one log entry; answers with one outcome per spec, in order: placed, " +
        "pending with a reason, or refused on its own (OVERLOADED past the unfinished-task bound)",
      body: SubmitTasksBody,
      response: SubmitTasksResponse,
      permission: { resource: "task", access: "submit" },
      sessioned: true,
      forwardToLeader: true,
      errors: ["TOO_LARGE", "NOT_LEADER"],
      handler: async (context) => {
        const body = context.body as SubmitTasksBody;
        const items = await service.submitTasks(
          body.specs.map(taskSpecFromRequest),
          writeOptions(context),
        );
        return { items };
      },
    },
    {
      method: "GET",
      url: "/v1/tasks",
      tag,
      summary: "List tasks in id order, by status and node, one page at a time",
      querystring: TaskListQuery,
      response: TaskListResponse,
      permission: TASK_READ,
      forwardToLeader: true,
      errors: ["NOT_LEADER"],
      handler: async (context) => {
        const q = context.query;
        const page = await service.listTasks(
          {
            ...(q["status"] === undefined ? {} : { status: q["status"] as TaskStatus }),
            ...(q["node"] === undefined ? {} : { nodeId: parsePositiveInteger(q["node"], "node") }),
            ...(q["after"] === undefined ? {} : { after: q["after"] }),
            ...(q["limit"] === undefined
              ? {}
              : { limit: parsePositiveInteger(q["limit"], "limit") }),
          },
          readOptions(context),
        );
        const last = page.tasks[page.tasks.length - 1];
        return {
          tasks: page.tasks.map(taskToJson),
          more: page.more,
          ...(page.more && last !== undefined ? { nextAfter: last.id } : {}),
        };
      },
    },
    {
      method: "GET",
      url: "/v1/tasks/:id",
      tag,
      summary: "One task: spec, status, node, attempts, result",
      params: TaskParams,
      querystring: TaskReadQuery,
      response: TaskJson,
      permission: TASK_READ,
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER"],
      handler: async (context) =>
        taskToJson(await service.getTask(taskId(context), readOptions(context))),
    },
    {
      method: "POST",
      url: "/v1/tasks/:id/cancel",
      tag,
      summary: "Cancel a task: a pending one ends at once, a running one is killed",
      params: TaskParams,
      response: TaskJson,
      permission: { resource: "task", access: "cancel" },
      sessioned: true,
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER", "CONFLICT"],
      handler: async (context) =>
        taskToJson(await service.cancelTask(taskId(context), writeOptions(context))),
    },
    {
      method: "GET",
      url: "/v1/tasks/:id/wait",
      tag,
      summary:
        "Long-poll: answers once the task has ended (done: true) or after timeoutMs " +
        `(default ${DEFAULT_WAIT_MS}, capped by the request deadline) with done: false`,
      params: TaskParams,
      querystring: TaskWaitQuery,
      response: TaskWaitResponse,
      permission: TASK_READ,
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER", "OVERLOADED"],
      handler: async (context) => {
        const { consistency, ...call } = readOptions(context);
        const task = await service.waitTask(taskId(context), {
          timeoutMs: waitMs(context),
          ...(call.signal === undefined ? {} : { signal: call.signal }),
          ...(consistency === undefined ? {} : { consistency }),
        });
        return { done: isTerminal(task.status), task: taskToJson(task) };
      },
    },
    {
      method: "GET",
      url: "/v1/tasks/:id/logs",
      tag,
      summary:
        "The captured stdout and stderr of the task's last ended attempt; with follow=true, " +
        "Server-Sent Events from the node that runs it (any node forwards there): its output " +
        "as it is written, then an end message once the task ended",
      params: TaskParams,
      querystring: TaskLogsQuery,
      response: TaskLogsResponse,
      permission: TASK_READ,
      forwardToLeader: true,
      errors: ["NOT_FOUND", "NOT_LEADER", "UNAVAILABLE"],
      handler: async (context) => {
        if (context.query["follow"] !== "true") {
          return taskLogsToJson(await service.taskLogs(taskId(context), readOptions(context)));
        }
        if (service.followTaskLog === undefined) {
          throw new UnavailableError("this node does not follow task output");
        }
        const options = readOptions(context);
        // A lease read would answer NOT_LEADER on a follower, and a stream is not sent on to
        // the leader: the task's own node serves it.
        const source = await service.followTaskLog(taskId(context), {
          ...options,
          consistency: options.consistency === "stale" ? "stale" : "linearizable",
        });
        return new StreamBody((response) => serveLogStream(response, source));
      },
    },
  ];
}
