/**
 * The orchestrator routes' request and response shapes: workers, tasks, VMs and the cluster's
 * orchestrator settings. A request mirrors the resource it creates (`{spec}` for a task,
 * `{name, spec, desired}` for a VM) and omitted fields take the documented defaults.
 *
 * CPU travels as integer millicores (`cpuMillis`, 1000 = one core), the model's own unit, so
 * nothing is rounded between the wire and the replicated state; the CLI takes cores
 * (`--cpu 0.5`) and converts. Memory is in MB and disk in GB, integers ≥ 0.
 *
 * These schemas check types, required fields, enums, name patterns and numeric ranges (400
 * INVALID_ARGUMENT). Sizes (string bytes, list lengths, a spec's total bytes) are left to the
 * state machine's reader, which the service runs before proposing, so that an oversized input
 * gets 413 TOO_LARGE from one place. Ranges and patterns are the model's (`limits.ts`, the
 * readers in `src/statemachine/orchestrator/`); a test holds the two together.
 *
 * Besides TypeBox this imports only the model's limits (constants, no code), because the client
 * SDK imports this folder.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import {
  DEFAULT_TASK_LIST_LIMIT,
  MAX_DRAIN_DEADLINE_MS,
  MAX_RESOURCE_AMOUNT,
  MAX_TASK_ATTEMPTS,
  MAX_TASK_LIST_LIMIT,
  MAX_TASK_TIMEOUT_MS,
  MAX_VM_BACKOFF_MS,
  MAX_VM_RESTARTS,
  MAX_VM_VCPUS,
  MAX_VM_PUBLISHED_PORTS,
  MAX_SUBMIT_BATCH_TASKS,
  MIN_VM_HEALTH_INTERVAL_MS,
  MAX_VM_HEALTH_INTERVAL_MS,
  MAX_VM_HEALTH_TIMEOUT_MS,
  MAX_VM_HEALTH_FAILURES,
} from "../../statemachine/orchestrator/limits.js";
import { Consistency, PositiveIntegerString } from "./common.js";

/** The longest long-poll of `GET /v1/tasks/{id}/wait`, in ms (the node's deadline caps it too). */
export const MAX_WAIT_MS = 10 * 60 * 1000;
/** The long-poll of `GET /v1/tasks/{id}/wait` when `timeoutMs` is not given. */
export const DEFAULT_WAIT_MS = 30_000;
/** The most tasks one list page returns. */
export const MAX_TASK_PAGE = MAX_TASK_LIST_LIMIT;
/** Tasks per list page when no limit is given. */
export const DEFAULT_TASK_PAGE = DEFAULT_TASK_LIST_LIMIT;

/** A feature or anti-affinity group name: letters, digits and `._:-`; e.g. `kvm`, `gpu:a100`. */
export const FEATURE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:-]*$";
/** A VM name: lowercase letters, digits and `-`, at most 63. */
export const VM_NAME_PATTERN = "^[a-z0-9-]{1,63}$";
/** A task id: letters, digits, `.`, `_`, `-` (the API generates UUIDs). */
export const TASK_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$";
/** An environment variable name, as POSIX shells accept it. */
export const ENV_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$";
/** An anti-affinity group: empty (none) or a feature-like name. */
export const GROUP_PATTERN = "^(?:[A-Za-z0-9][A-Za-z0-9._:-]*)?$";
/** Text that a process can receive: no NUL character. */
const NO_NUL_PATTERN = "^[^\\u0000]*$";

// -------------------------------------------------------------------------------------------------
// Defaults

/** What a task asks for when `spec.resources` (or a field of it) is omitted: one core, 256 MB. */
export const DEFAULT_TASK_RESOURCES = { cpuMillis: 1000, memoryMb: 256, diskGb: 0 } as const;

/** The defaults of a task spec's optional fields. */
export const TASK_SPEC_DEFAULTS = {
  args: [] as readonly string[],
  env: {} as Readonly<Record<string, string>>,
  cwd: "",
  shell: false,
  requiredFeatures: [] as readonly string[],
  timeoutMs: 0,
  maxAttempts: 3,
} as const;

/** The default restart policy of a VM: restart on failure, 5 times, from 1 s backoff. */
export const DEFAULT_RESTART_POLICY = {
  mode: "on-failure",
  maxRestarts: 5,
  backoffMs: 1000,
} as const;

/**
 * The defaults of a VM health check's timing: a probe every 10 s that may take 2 s; unhealthy
 * after 3 failures in a row (so within about 30 s of the guest's service going away).
 */
export const DEFAULT_VM_HEALTH = {
  intervalMs: 10_000,
  timeoutMs: 2000,
  failureThreshold: 3,
} as const;

/** The defaults of a VM spec's optional fields. */
export const VM_SPEC_DEFAULTS = {
  vcpus: 1,
  memoryMb: 256,
  diskGb: 0,
  command: "",
  args: [] as readonly string[],
  kernel: "",
  initrd: "",
  image: "",
  cmdline: "",
  requiredFeatures: [] as readonly string[],
  antiAffinityGroup: "",
} as const;

// -------------------------------------------------------------------------------------------------
// Building blocks

/**
 * A string enum as one JSON Schema `enum` (rather than TypeBox's `anyOf` of literals), so a bad
 * value gets one validation message instead of one per allowed value.
 */
function StringEnum<const T extends readonly string[]>(
  values: T,
  options: { description?: string; default?: T[number] } = {},
): TSchema & { static: T[number] } {
  return Type.Unsafe<T[number]>({
    type: "string",
    enum: [...values],
    ...options,
    description: `${options.description === undefined ? "" : `${options.description}: `}one of ${values.join(", ")}`,
  });
}

const Text = (options: { minLength?: number; description?: string } = {}) =>
  Type.String({ pattern: NO_NUL_PATTERN, ...options });

const Count = (maximum: number, description: string, minimum = 0) =>
  Type.Integer({ minimum, maximum, description });

const Features = (description: string) =>
  Type.Array(Type.String({ pattern: FEATURE_PATTERN }), { description });

const Args = (description: string) => Type.Array(Text(), { description, default: [] });

/** Resources as stored: integers, CPU in millicores. */
export const ResourcesJson = Type.Object({
  cpuMillis: Type.Integer({ description: "CPU in millicores (1000 = one core)" }),
  memoryMb: Type.Integer(),
  diskGb: Type.Integer(),
});
/** Resources as stored. */
export type ResourcesJson = Static<typeof ResourcesJson>;

/** Resources a task asks for; each omitted field takes {@link DEFAULT_TASK_RESOURCES}. */
export const ResourcesRequest = Type.Object(
  {
    cpuMillis: Type.Optional(
      Count(MAX_RESOURCE_AMOUNT, "CPU in millicores (1000 = one core); default 1000"),
    ),
    memoryMb: Type.Optional(Count(MAX_RESOURCE_AMOUNT, "memory in MB; default 256")),
    diskGb: Type.Optional(Count(MAX_RESOURCE_AMOUNT, "disk in GB; default 0")),
  },
  { additionalProperties: false },
);
/** Resources a task asks for. */
export type ResourcesRequest = Static<typeof ResourcesRequest>;

// -------------------------------------------------------------------------------------------------
// Workers

/**
 * A worker's status: `draining` while a drained worker still holds work, `drained` once it holds
 * none.
 */
export const WorkerStatusJson = StringEnum(["online", "draining", "drained", "offline"] as const);

/** A node as a place to run work. */
export const WorkerJson = Type.Object({
  nodeId: Type.Integer(),
  capacity: ResourcesJson,
  features: Type.Array(Type.String()),
  status: WorkerStatusJson,
  drain: Type.Boolean({ description: "an administrator drained it; outlives going offline" }),
  drainDeadlineMs: Type.Optional(
    Type.Integer({
      description:
        "log time (ms since the Unix epoch) at which the tasks still running on this draining worker are moved off; absent when no drain waits",
    }),
  ),
  allocated: ResourcesJson,
  lastSeenMs: Type.Integer({ description: "log time of its last registration or heartbeat" }),
});
/** A worker. */
export type WorkerJson = Static<typeof WorkerJson>;

/** POST /v1/workers/:id/drain response: the worker and what the drain moved off it. */
export const DrainedWorkerJson = Type.Object({
  ...WorkerJson.properties,
  moved: Type.Object(
    { tasks: Type.Integer({ minimum: 0 }), vms: Type.Integer({ minimum: 0 }) },
    {
      description:
        "tasks re-queued (no attempt spent) and VMs re-placed now; running tasks left to finish before a deadline are not counted",
    },
  ),
});
/** POST /v1/workers/:id/drain response. */
export type DrainedWorkerJson = Static<typeof DrainedWorkerJson>;

/** POST /v1/workers/:id/drain query. */
export const DrainQuery = Type.Object(
  {
    deadlineMs: Type.Optional(
      Type.String({
        pattern: "^(0|[1-9][0-9]{0,10})$",
        description: `let tasks already running finish on the worker for up to this many ms (at most ${MAX_DRAIN_DEADLINE_MS}), then move them; default 0: move them now`,
      }),
    ),
  },
  { additionalProperties: false },
);
/** POST /v1/workers/:id/drain query. */
export type DrainQuery = Static<typeof DrainQuery>;

/** GET /v1/workers response. */
export const WorkersResponse = Type.Object({ workers: Type.Array(WorkerJson) });
/** GET /v1/workers response. */
export type WorkersResponse = Static<typeof WorkersResponse>;

/** A worker's node id in the path. */
export const WorkerParams = Type.Object({ id: Type.String({ pattern: "^[1-9][0-9]{0,15}$" }) });
/** Path parameters of worker routes. */
export type WorkerParams = Static<typeof WorkerParams>;

// -------------------------------------------------------------------------------------------------
// Tasks

/**
 * Every task status on the wire, in lifecycle order; terminal: succeeded, failed, timed_out,
 * cancelled, lost. The model's own list (`TASK_STATUSES` in the orchestrator state machine) must
 * be the same set: `src/api/orchestrator-convert.ts` fails to compile if they differ.
 */
export const TASK_STATUS_VALUES = [
  "pending",
  "assigned",
  "running",
  "succeeded",
  "failed",
  "timed_out",
  "cancelled",
  "lost",
] as const;

/** A task's status; terminal: succeeded, failed, timed_out, cancelled, lost. */
export const TaskStatusJson = StringEnum(TASK_STATUS_VALUES);
/** A task's status. */
export type TaskStatusJson = Static<typeof TaskStatusJson>;

/** An environment value given as an object: `{"value": "…", "secret": true}` marks a secret. */
export const SecretEnvValueRequest = Type.Object(
  { value: Text(), secret: Type.Boolean() },
  { additionalProperties: false },
);
/** An environment value as an object. */
export type SecretEnvValueRequest = Static<typeof SecretEnvValueRequest>;

/** What the API shows of a secret environment value: its name, never its value. */
export const REDACTED_VALUE = "<redacted>";

/** What a task runs and needs, as submitted: only `command` is required. */
export const TaskSpecRequest = Type.Object(
  {
    command: Text({
      minLength: 1,
      description: "the program (looked up in PATH), or the script when shell is true",
    }),
    args: Type.Optional(Args("arguments; must be empty when shell is true")),
    env: Type.Optional(
      Type.Record(Type.String(), Type.Union([Text(), SecretEnvValueRequest]), {
        propertyNames: { pattern: ENV_NAME_PATTERN },
        description:
          "environment variables added to the node-set ones; a value {value, secret: true} is a " +
          "secret: never returned by the API nor logged. PATH, LD_* and loader or interpreter " +
          "start-up variables are refused",
        default: {},
      }),
    ),
    cwd: Type.Optional(
      Text({ description: "working directory on the worker; empty means the agent's default" }),
    ),
    shell: Type.Optional(
      Type.Boolean({ description: "run command as a /bin/sh -c script", default: false }),
    ),
    resources: Type.Optional(ResourcesRequest),
    requiredFeatures: Type.Optional(Features("features a worker must have")),
    timeoutMs: Type.Optional(
      Count(MAX_TASK_TIMEOUT_MS, "kill the task (SIGTERM, then SIGKILL) after this; 0 = never"),
    ),
    maxAttempts: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_TASK_ATTEMPTS,
        description: "attempts in all, the first included; default 3",
      }),
    ),
  },
  { additionalProperties: false },
);
/** A task spec as submitted. */
export type TaskSpecRequest = Static<typeof TaskSpecRequest>;

/** POST /v1/tasks body. */
export const SubmitTaskBody = Type.Object(
  { spec: TaskSpecRequest },
  { additionalProperties: false },
);
/** POST /v1/tasks body. */
export type SubmitTaskBody = Static<typeof SubmitTaskBody>;

/** POST /v1/tasks/batch body. */
export const SubmitTasksBody = Type.Object(
  {
    specs: Type.Array(TaskSpecRequest, {
      minItems: 1,
      maxItems: MAX_SUBMIT_BATCH_TASKS,
      description: "the tasks, submitted in this order in one log entry",
    }),
  },
  { additionalProperties: false },
);
/** POST /v1/tasks/batch body. */
export type SubmitTasksBody = Static<typeof SubmitTasksBody>;

/** The outcome of one item of a batch that was refused, alone; `message` as described. */
function refusedItem(message: string) {
  return Type.Object({
    ok: Type.Literal(false),
    id: Type.String(),
    code: StringEnum(["CONFLICT", "NOT_FOUND", "OVERLOADED"] as const),
    message: Type.String({ description: message }),
  });
}

/** The outcome of one task of a batch submit. */
export const SubmitItemJson = Type.Union([
  Type.Object({
    ok: Type.Literal(true),
    id: Type.String({ description: "the task's new id" }),
    status: TaskStatusJson,
    nodeId: Type.Union([Type.Integer(), Type.Null()]),
    pendingReason: Type.Optional(Type.String({ description: "why it is pending; absent if not" })),
  }),
  refusedItem("what went wrong and what to do"),
]);
/** The outcome of one task of a batch submit. */
export type SubmitItemJson = Static<typeof SubmitItemJson>;

/** POST /v1/tasks/batch response: one outcome per spec, in order. */
export const SubmitTasksResponse = Type.Object({ items: Type.Array(SubmitItemJson) });
/** POST /v1/tasks/batch response. */
export type SubmitTasksResponse = Static<typeof SubmitTasksResponse>;

/** The outcome of one report of an `agentReports` batch. */
export const ReportItemJson = Type.Union([
  Type.Object({
    ok: Type.Literal(true),
    id: Type.String({ description: "the task id or VM name the report is about" }),
    status: Type.String({ description: "the task's or VM's status after the report" }),
    nodeId: Type.Union([Type.Integer(), Type.Null()]),
    pendingReason: Type.Optional(Type.String({ description: "why it is pending; absent if not" })),
  }),
  refusedItem("why the report was refused (it changed nothing)"),
]);
/** The outcome of one report of an `agentReports` batch. */
export type ReportItemJson = Static<typeof ReportItemJson>;

/** POST /v1/agent/reports response. */
export const ReportResponse = Type.Object({
  accepted: Type.Literal(true),
  items: Type.Optional(
    Type.Array(ReportItemJson, {
      description: "for an agentReports batch only: one outcome per report, in order",
    }),
  ),
});
/** POST /v1/agent/reports response. */
export type ReportResponse = Static<typeof ReportResponse>;

/** A task spec as stored: every field present. */
export const TaskSpecJson = Type.Object({
  command: Type.String(),
  args: Type.Array(Type.String()),
  env: Type.Record(
    Type.String(),
    Type.Union([
      Type.String(),
      Type.Object({ value: Type.Literal(REDACTED_VALUE), secret: Type.Literal(true) }),
    ]),
    { description: `a secret variable shows as {"value": "${REDACTED_VALUE}", "secret": true}` },
  ),
  cwd: Type.String(),
  shell: Type.Boolean(),
  resources: ResourcesJson,
  requiredFeatures: Type.Array(Type.String()),
  timeoutMs: Type.Integer(),
  maxAttempts: Type.Integer(),
});
/** A task spec as stored. */
export type TaskSpecJson = Static<typeof TaskSpecJson>;

/** What the agent reported when an attempt ended. */
export const TaskResultJson = Type.Object({
  exitCode: Type.Union([Type.Integer(), Type.Null()], {
    description: "null when killed by a signal or never started",
  }),
  stdout: Type.String(),
  stderr: Type.String(),
  stdoutTruncated: Type.Boolean(),
  stderrTruncated: Type.Boolean(),
  durationMs: Type.Integer(),
  error: Type.String({ description: "why it did not run or was killed, else empty" }),
});
/** A task's result. */
export type TaskResultJson = Static<typeof TaskResultJson>;

/** A task. */
export const TaskJson = Type.Object({
  id: Type.String(),
  spec: TaskSpecJson,
  status: TaskStatusJson,
  nodeId: Type.Union([Type.Integer(), Type.Null()], { description: "the current or last node" }),
  attempts: Type.Integer(),
  result: Type.Union([TaskResultJson, Type.Null()], {
    description: "the final attempt's outcome: set exactly when the task has ended",
  }),
  cancelRequested: Type.Boolean({ description: "a cancel was asked for; its agent kills it" }),
  pendingReason: Type.String({ description: "why it is not placed yet, else empty" }),
  submittedAtMs: Type.Integer(),
  updatedAtMs: Type.Integer(),
});
/** A task. */
export type TaskJson = Static<typeof TaskJson>;

/** A task id in the path. */
export const TaskParams = Type.Object({ id: Type.String({ pattern: TASK_ID_PATTERN }) });
/** Path parameters of task routes. */
export type TaskParams = Static<typeof TaskParams>;

/** Query string of single-task reads. */
export const TaskReadQuery = Type.Object({ consistency: Type.Optional(Consistency) });
/** Query string of single-task reads. */
export type TaskReadQuery = Static<typeof TaskReadQuery>;

/** GET /v1/tasks query string. */
export const TaskListQuery = Type.Object({
  status: Type.Optional(TaskStatusJson),
  node: Type.Optional(PositiveIntegerString),
  after: Type.Optional(
    Type.String({ pattern: TASK_ID_PATTERN, description: "tasks whose id sorts after this" }),
  ),
  limit: Type.Optional(PositiveIntegerString),
  consistency: Type.Optional(Consistency),
});
/** GET /v1/tasks query string. */
export type TaskListQuery = Static<typeof TaskListQuery>;

/** GET /v1/tasks response: one page in id order; pass `nextAfter` as `after` for the next. */
export const TaskListResponse = Type.Object({
  tasks: Type.Array(TaskJson),
  more: Type.Boolean(),
  nextAfter: Type.Optional(Type.String()),
});
/** GET /v1/tasks response. */
export type TaskListResponse = Static<typeof TaskListResponse>;

/** GET /v1/tasks/{id}/wait query string. */
export const TaskWaitQuery = Type.Object({
  timeoutMs: Type.Optional(PositiveIntegerString),
  consistency: Type.Optional(Consistency),
});
/** GET /v1/tasks/{id}/wait query string. */
export type TaskWaitQuery = Static<typeof TaskWaitQuery>;

/**
 * GET /v1/tasks/{id}/wait response: the task once it is terminal (`done: true`), or as it is
 * when the long-poll ran out (`done: false`: ask again).
 */
export const TaskWaitResponse = Type.Object({ done: Type.Boolean(), task: TaskJson });
/** GET /v1/tasks/{id}/wait response. */
export type TaskWaitResponse = Static<typeof TaskWaitResponse>;

/** GET /v1/tasks/{id}/logs response: the last attempt's captured output (empty before one ends). */
export const TaskLogsResponse = Type.Object({
  id: Type.String(),
  status: TaskStatusJson,
  available: Type.Boolean({ description: "an attempt has ended and reported its output" }),
  stdout: Type.String(),
  stderr: Type.String(),
  stdoutTruncated: Type.Boolean(),
  stderrTruncated: Type.Boolean(),
});
/** GET /v1/tasks/{id}/logs response. */
export type TaskLogsResponse = Static<typeof TaskLogsResponse>;

// -------------------------------------------------------------------------------------------------
// VMs

/** How a VM is run. */
export const VmDriverJson = StringEnum(["process", "qemu"] as const, { description: "driver" });
/** What a VM should be. */
export const VmDesiredJson = StringEnum(["running", "stopped"] as const);
/** What a VM is observed to be. */
export const VmStatusJson = StringEnum([
  "pending",
  "scheduled",
  "starting",
  "booting",
  "running",
  "unhealthy",
  "migrating",
  "stopping",
  "stopped",
  "failed",
] as const);
/** A restart mode. */
export const RestartModeJson = StringEnum(["never", "on-failure"] as const);

/** A restart policy as submitted; omitted fields take {@link DEFAULT_RESTART_POLICY}. */
export const RestartPolicyRequest = Type.Object(
  {
    mode: Type.Optional(RestartModeJson),
    maxRestarts: Type.Optional(Count(MAX_VM_RESTARTS, "default 5")),
    backoffMs: Type.Optional(
      Count(MAX_VM_BACKOFF_MS, "first backoff in ms; doubles per restart up to 30 s; default 1000"),
    ),
  },
  { additionalProperties: false },
);
/** A restart policy as submitted. */
export type RestartPolicyRequest = Static<typeof RestartPolicyRequest>;

/** A host TCP port forwarded to a guest port. */
export const PublishedPortJson = Type.Object(
  {
    hostPort: Count(65_535, "TCP port on the node that runs the VM", 1),
    guestPort: Count(65_535, "TCP port in the guest", 1),
  },
  { additionalProperties: false },
);

/** A VM health check as submitted: `tcpPort` or `command`; omitted timings take {@link DEFAULT_VM_HEALTH}. */
export const VmHealthRequest = Type.Object(
  {
    tcpPort: Type.Optional(Count(65_535, "a guest TCP port that must accept a connection", 1)),
    command: Type.Optional(
      Text({
        description: "a shell command run in the guest through its agent; healthy on exit 0",
      }),
    ),
    intervalMs: Type.Optional(
      Count(MAX_VM_HEALTH_INTERVAL_MS, "between probes; default 10000", MIN_VM_HEALTH_INTERVAL_MS),
    ),
    timeoutMs: Type.Optional(
      Count(MAX_VM_HEALTH_TIMEOUT_MS, "one probe's limit, at most intervalMs; default 2000", 1),
    ),
    failureThreshold: Type.Optional(
      Count(MAX_VM_HEALTH_FAILURES, "failed probes in a row that make it unhealthy; default 3", 1),
    ),
  },
  { additionalProperties: false },
);
/** A VM health check as submitted. */
export type VmHealthRequest = Static<typeof VmHealthRequest>;

/** A VM health check as stored: `tcpPort` 0 for a command check, `command` "" for a TCP one. */
export const VmHealthJson = Type.Object({
  tcpPort: Type.Integer(),
  command: Type.String(),
  intervalMs: Type.Integer(),
  timeoutMs: Type.Integer(),
  failureThreshold: Type.Integer(),
});

/**
 * A VM spec as submitted: `driver` is required. The `process` driver needs `command` (and takes
 * `args`); the `qemu` driver needs `kernel` or `image` (and takes `initrd` and `cmdline` with a
 * kernel). Fields of the other driver must be left out.
 */
export const VmSpecRequest = Type.Object(
  {
    driver: VmDriverJson,
    vcpus: Type.Optional(Count(MAX_VM_VCPUS, "default 1", 1)),
    memoryMb: Type.Optional(Count(MAX_RESOURCE_AMOUNT, "memory in MB; default 256", 1)),
    diskGb: Type.Optional(Count(MAX_RESOURCE_AMOUNT, "disk in GB; default 0")),
    command: Type.Optional(Text({ description: "process driver: the program (no shell)" })),
    args: Type.Optional(Args("process driver: its arguments")),
    kernel: Type.Optional(Text({ description: "qemu driver: the kernel's path on the worker" })),
    initrd: Type.Optional(Text({ description: "qemu driver: an initrd's path on the worker" })),
    image: Type.Optional(Text({ description: "qemu driver: a disk image's path on the worker" })),
    cmdline: Type.Optional(Text({ description: "qemu driver: the kernel command line" })),
    requiredFeatures: Type.Optional(Features("features a worker must have")),
    antiAffinityGroup: Type.Optional(
      Type.String({
        pattern: GROUP_PATTERN,
        description: "VMs sharing a non-empty group never share a worker",
      }),
    ),
    restart: Type.Optional(RestartPolicyRequest),
    publish: Type.Optional(
      Type.Array(PublishedPortJson, {
        maxItems: MAX_VM_PUBLISHED_PORTS,
        description:
          "qemu driver: host ports forwarded to guest ports (user-mode networking), each host port once",
      }),
    ),
    health: Type.Optional(VmHealthRequest),
  },
  { additionalProperties: false },
);
/** A VM spec as submitted. */
export type VmSpecRequest = Static<typeof VmSpecRequest>;

/** POST /v1/vms body. */
export const CreateVmBody = Type.Object(
  {
    name: Type.String({ pattern: VM_NAME_PATTERN, description: "unique; usable as a host name" }),
    spec: VmSpecRequest,
    desired: Type.Optional(VmDesiredJson),
  },
  { additionalProperties: false },
);
/** POST /v1/vms body. */
export type CreateVmBody = Static<typeof CreateVmBody>;

/** A restart policy as stored. */
export const RestartPolicyJson = Type.Object({
  mode: RestartModeJson,
  maxRestarts: Type.Integer(),
  backoffMs: Type.Integer(),
});

/** A VM spec as stored: every field present. */
export const VmSpecJson = Type.Object({
  vcpus: Type.Integer(),
  memoryMb: Type.Integer(),
  diskGb: Type.Integer(),
  driver: VmDriverJson,
  command: Type.String(),
  args: Type.Array(Type.String()),
  kernel: Type.String(),
  initrd: Type.String(),
  image: Type.String(),
  cmdline: Type.String(),
  requiredFeatures: Type.Array(Type.String()),
  antiAffinityGroup: Type.String(),
  restart: RestartPolicyJson,
  /** Absent when the VM publishes no port. */
  publish: Type.Optional(Type.Array(PublishedPortJson)),
  /** Absent when the VM has no health check. */
  health: Type.Optional(VmHealthJson),
});
/** A VM spec as stored. */
export type VmSpecJson = Static<typeof VmSpecJson>;

/** A VM. */
export const VmJson = Type.Object({
  name: Type.String(),
  spec: VmSpecJson,
  desired: VmDesiredJson,
  status: VmStatusJson,
  nodeId: Type.Union([Type.Integer(), Type.Null()]),
  restarts: Type.Integer(),
  lastError: Type.String(),
  pendingReason: Type.String(),
  createdAtMs: Type.Integer(),
  updatedAtMs: Type.Integer(),
  diskNodeId: Type.Optional(
    Type.Integer({
      description:
        "the node holding the VM's current disk (a VM with an image overlay or a data disk), the one it last ran on; a copy on any other node is stale and discarded",
    }),
  ),
  migration: Type.Optional(
    Type.Object(
      {
        targetNodeId: Type.Integer({ description: "the node the VM is moving to" }),
        incomingUri: Type.String({
          description: "where the target listens for the stream; empty until it does",
        }),
        diskUri: Type.Optional(
          Type.String({
            description:
              "where the target's disk takes the copy of the VM's own disk (nbd:HOST:PORT); absent for a VM without a disk",
          }),
        ),
        startedAtMs: Type.Integer(),
      },
      { description: "set while the VM is migrating" },
    ),
  ),
});
/** A VM. */
export type VmJson = Static<typeof VmJson>;

/** POST /v1/vms/{name}/migrate body. */
export const MigrateVmBody = Type.Object(
  {
    targetNodeId: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: "the node to move the VM to; omitted: the scheduler picks another node",
      }),
    ),
  },
  { additionalProperties: false },
);
/** POST /v1/vms/{name}/migrate body. */
export type MigrateVmBody = Static<typeof MigrateVmBody>;

/** GET /v1/vms response. */
export const VmsResponse = Type.Object({ vms: Type.Array(VmJson) });
/** GET /v1/vms response. */
export type VmsResponse = Static<typeof VmsResponse>;

/** A VM name in the path. */
export const VmParams = Type.Object({ name: Type.String({ pattern: VM_NAME_PATTERN }) });
/** Path parameters of VM routes. */
export type VmParams = Static<typeof VmParams>;

/** DELETE /v1/vms/{name} response. */
export const VmDeletedResponse = Type.Object({ deleted: Type.Literal(true), name: Type.String() });
/** DELETE /v1/vms/{name} response. */
export type VmDeletedResponse = Static<typeof VmDeletedResponse>;

// -------------------------------------------------------------------------------------------------
// Settings

/** How the scheduler ranks feasible workers. */
export const PlacementJson = StringEnum(["binpack", "spread"] as const);

/** The cluster's orchestrator settings (GET response and PUT body). */
export const OrchestratorSettingsJson = Type.Object(
  { placement: PlacementJson },
  { additionalProperties: false },
);
/** The cluster's orchestrator settings. */
export type OrchestratorSettingsJson = Static<typeof OrchestratorSettingsJson>;

/**
 * `follow=true` on a logs route: the answer is Server-Sent Events (`open`, `output`, `end`, …;
 * see `events/log-stream.ts`) that go on as the log is written, instead of one JSON answer.
 */
export const FollowFlag = Type.Union([Type.Literal("true"), Type.Literal("false")], {
  description:
    "true: stream the log as Server-Sent Events (output as it is written, until it ends) instead of one JSON answer",
});

/** GET /v1/tasks/{id}/logs query string. */
export const TaskLogsQuery = Type.Object({
  consistency: Type.Optional(Consistency),
  follow: Type.Optional(FollowFlag),
});
/** GET /v1/tasks/{id}/logs query string. */
export type TaskLogsQuery = Static<typeof TaskLogsQuery>;

/** GET /v1/vms/{name}/logs query. */
export const VmLogQuery = Type.Object(
  {
    offset: Type.Optional(
      Type.String({
        pattern: "^(0|[1-9][0-9]{0,15})$",
        description:
          "read from this byte offset (a previous answer's nextOffset); omitted: the tail",
      }),
    ),
    tail: Type.Optional(
      Type.String({
        pattern: "^(0|[1-9][0-9]{0,5})$",
        description: "without offset: the last N lines (default 100)",
      }),
    ),
    follow: Type.Optional(FollowFlag),
  },
  { additionalProperties: false },
);
/** GET /v1/vms/{name}/logs query. */
export type VmLogQuery = Static<typeof VmLogQuery>;

/** GET /v1/vms/{name}/logs response: a piece of the console log (at most 64 KiB). */
export const VmLogResponse = Type.Object({
  nodeId: Type.Integer({ description: "the node whose log this is" }),
  text: Type.String(),
  nextOffset: Type.Integer({ description: "ask from here to follow the log" }),
  rotated: Type.Boolean({ description: "the log was rotated since offset; text starts anew" }),
});
/** GET /v1/vms/{name}/logs response. */
export type VmLogResponse = Static<typeof VmLogResponse>;

/** What `POST /v1/vms/{name}/exec` runs when the body gives no timeout: 5 s. */
export const DEFAULT_VM_EXEC_TIMEOUT_MS = 5000;

/** POST /v1/vms/{name}/exec body. */
export const VmExecBody = Type.Object(
  {
    command: Text({
      minLength: 1,
      description: "a shell command (sh -c in the guest); stdin is empty",
    }),
    timeoutMs: Type.Optional(
      Count(
        600_000,
        "the guest kills the command after this (rounded up to seconds); default 5000, at most what the request's deadline leaves",
        1,
      ),
    ),
  },
  { additionalProperties: false },
);
/** POST /v1/vms/{name}/exec body. */
export type VmExecBody = Static<typeof VmExecBody>;

/** POST /v1/vms/{name}/exec response. */
export const VmExecResponse = Type.Object({
  nodeId: Type.Integer({ description: "the node that runs the VM" }),
  exitCode: Type.Integer({ description: "the command's exit code (143: killed at its timeout)" }),
  output: Type.String({ description: "stdout and stderr together, the first 64 KiB" }),
  truncated: Type.Boolean({ description: "the command printed more than was kept" }),
});
/** POST /v1/vms/{name}/exec response. */
export type VmExecResponse = Static<typeof VmExecResponse>;
