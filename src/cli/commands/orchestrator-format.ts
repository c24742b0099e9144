/** How workers, tasks and VMs look to people: table rows and field/value details. */
import type { Task, Vm, Worker } from "../../client/index.js";
import { formatTable } from "../table.js";
import { CGROUPS_FEATURE, RAW_EXEC_FEATURE } from "../../statemachine/orchestrator/features.js";

/** Millicores as cores: 1000 → "1", 500 → "0.5". Throws nothing. */
export function formatCpu(millis: number): string {
  return String(millis / 1000);
}

/** A duration for people: "350 ms", "1.2 s", "3 min 4 s". Throws nothing. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A log time (ms since the Unix epoch) as ISO 8601, or "-" for none. Throws nothing. */
export function formatTime(ms: number): string {
  return ms > 0 ? new Date(ms).toISOString() : "-";
}

/** An argument as a POSIX shell would need it written. Throws nothing. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** A command and its arguments as one line a shell would run the same way. Throws nothing. */
export function commandLine(command: string, args: readonly string[]): string {
  return [command, ...args].map(shellQuote).join(" ");
}

const list = (items: readonly string[]): string => (items.length === 0 ? "-" : items.join(","));
const node = (id: number | null): string => (id === null ? "-" : String(id));

/** The workers as a table. Throws nothing. */
export function workersTable(workers: readonly Worker[]): string {
  return formatTable(
    ["NODE", "STATUS", "CPU", "MEMORY MB", "DISK GB", "LIMITS", "FEATURES"],
    workers.map((w) => [
      String(w.nodeId),
      workerStatus(w),
      `${formatCpu(w.allocated.cpuMillis)}/${formatCpu(w.capacity.cpuMillis)}`,
      `${w.allocated.memoryMb}/${w.capacity.memoryMb}`,
      `${w.allocated.diskGb}/${w.capacity.diskGb}`,
      limitsColumn(w),
      list(w.features),
    ]),
  );
}

/** A task's exit code for a table, or "-". */
function exitColumn(task: Task): string {
  const code = task.result?.exitCode;
  return code === undefined || code === null ? "-" : String(code);
}

/** The tasks as a table. Throws nothing. */
export function tasksTable(tasks: readonly Task[]): string {
  return formatTable(
    ["ID", "STATUS", "NODE", "ATTEMPTS", "EXIT", "COMMAND"],
    tasks.map((t) => [
      t.id,
      t.status,
      node(t.nodeId),
      `${t.attempts}/${t.spec.maxAttempts}`,
      exitColumn(t),
      truncate(t.spec.shell ? t.spec.command : commandLine(t.spec.command, t.spec.args), 60),
    ]),
  );
}

/** One task, field by field. Throws nothing. */
export function taskDetails(task: Task): string {
  const { spec, result } = task;
  const rows: [string, string][] = [
    ["id", task.id],
    ["status", task.status],
    ["node", node(task.nodeId)],
    ["attempts", `${task.attempts} of ${spec.maxAttempts}`],
    [
      "command",
      spec.shell ? `sh -c ${shellQuote(spec.command)}` : commandLine(spec.command, spec.args),
    ],
    ["cwd", spec.cwd === "" ? "(agent default)" : spec.cwd],
    [
      "env",
      list(
        Object.entries(spec.env).map(([k, v]) =>
          typeof v === "string" ? `${k}=${v}` : `${k}=${v.value} (secret)`,
        ),
      ),
    ],
    [
      "resources",
      `cpu ${formatCpu(spec.resources.cpuMillis)}, ${spec.resources.memoryMb} MB, ${spec.resources.diskGb} GB`,
    ],
    ["features", list(spec.requiredFeatures)],
    ["timeout", spec.timeoutMs === 0 ? "none" : formatDuration(spec.timeoutMs)],
    ["submitted", formatTime(task.submittedAtMs)],
    ["updated", formatTime(task.updatedAtMs)],
  ];
  if (task.pendingReason !== "") rows.push(["pending because", task.pendingReason]);
  if (task.cancelRequested && task.result === null) rows.push(["cancel", "requested"]);
  if (result !== null) {
    rows.push(["exit code", result.exitCode === null ? "-" : String(result.exitCode)]);
    rows.push(["duration", formatDuration(result.durationMs)]);
    if (result.error !== "") rows.push(["error", result.error]);
    rows.push(["stdout", outputSummary(result.stdout, result.stdoutTruncated)]);
    rows.push(["stderr", outputSummary(result.stderr, result.stderrTruncated)]);
  }
  return formatTable(["FIELD", "VALUE"], rows);
}

function outputSummary(text: string, truncated: boolean): string {
  const bytes = new TextEncoder().encode(text).byteLength;
  return `${bytes} bytes${truncated ? " (truncated)" : ""}; see \`blixard task logs\``;
}

/** The VMs as a table. Throws nothing. */
export function vmsTable(vms: readonly Vm[]): string {
  return formatTable(
    ["NAME", "DESIRED", "STATUS", "NODE", "DRIVER", "VCPUS", "MEMORY MB", "RESTARTS"],
    vms.map((v) => [
      v.name,
      v.desired,
      v.status,
      node(v.nodeId),
      v.spec.driver,
      String(v.spec.vcpus),
      String(v.spec.memoryMb),
      String(v.restarts),
    ]),
  );
}

/** One VM, field by field. Throws nothing. */
export function vmDetails(vm: Vm, nodeHost?: string): string {
  const { spec } = vm;
  const rows: [string, string][] = [
    ["name", vm.name],
    ["desired", vm.desired],
    ["status", vm.status],
    ["node", node(vm.nodeId)],
    ...(vm.migration === undefined
      ? []
      : [["migrating to", `node ${vm.migration.targetNodeId}`] as [string, string]]),
    ["driver", spec.driver],
    ["resources", `${spec.vcpus} vcpus, ${spec.memoryMb} MB, ${spec.diskGb} GB`],
  ];
  // Where its disk is matters once the VM is not running there (stopped, waiting, moved).
  if (vm.diskNodeId !== undefined) rows.push(["disk on", `node ${vm.diskNodeId}`]);
  if (spec.driver === "process") rows.push(["command", commandLine(spec.command, spec.args)]);
  for (const [field, value] of [
    ["kernel", spec.kernel],
    ["initrd", spec.initrd],
    ["image", spec.image],
    ["cmdline", spec.cmdline],
  ] as const) {
    if (value !== "") rows.push([field, value]);
  }
  for (const port of spec.publish ?? []) {
    // Where a client connects: the node's address when it is known.
    const at = nodeHost === undefined ? `port ${port.hostPort}` : `${nodeHost}:${port.hostPort}`;
    rows.push(["published", `${at} -> guest port ${port.guestPort}`]);
  }
  if (spec.health !== undefined) rows.push(["health check", healthCheck(spec.health)]);
  rows.push(
    ["features", list(spec.requiredFeatures)],
    ["anti-affinity", spec.antiAffinityGroup === "" ? "-" : spec.antiAffinityGroup],
    [
      "restart",
      spec.restart.mode === "never"
        ? "never"
        : `on-failure, at most ${spec.restart.maxRestarts}, backoff from ${formatDuration(spec.restart.backoffMs)}`,
    ],
    ["restarts", String(vm.restarts)],
    ["created", formatTime(vm.createdAtMs)],
    ["updated", formatTime(vm.updatedAtMs)],
  );
  if (vm.pendingReason !== "") rows.push(["pending because", vm.pendingReason]);
  if (vm.lastError !== "") rows.push(["last error", vm.lastError]);
  return formatTable(["FIELD", "VALUE"], rows);
}

/** A health check in one line, e.g. `tcp guest port 80 every 10s (2s timeout), unhealthy after 3 failures`. */
function healthCheck(health: NonNullable<Vm["spec"]["health"]>): string {
  const probe =
    health.command === "" ? `tcp guest port ${health.tcpPort}` : `command ${health.command}`;
  return (
    `${probe} every ${formatDuration(health.intervalMs)} (${formatDuration(health.timeoutMs)} timeout), ` +
    `unhealthy after ${health.failureThreshold} failure${health.failureThreshold === 1 ? "" : "s"}`
  );
}

/** The worker, field by field. Throws nothing. */
export function workerDetails(w: Worker): string {
  return formatTable(
    ["FIELD", "VALUE"],
    [
      ["node", String(w.nodeId)],
      ["status", workerStatus(w)],
      [
        "cpu",
        `${formatCpu(w.allocated.cpuMillis)} of ${formatCpu(w.capacity.cpuMillis)} cores allocated`,
      ],
      ["memory", `${w.allocated.memoryMb} of ${w.capacity.memoryMb} MB allocated`],
      ["disk", `${w.allocated.diskGb} of ${w.capacity.diskGb} GB allocated`],
      ["features", list(w.features)],
      ["limits", limitsDetail(w)],
      ...(w.drainDeadlineMs === undefined
        ? []
        : [["drain deadline", `${formatTime(w.drainDeadlineMs)} (running tasks move then)`]]),
      ["last seen", formatTime(w.lastSeenMs)],
    ],
  );
}

/**
 * Whether a worker enforces task limits: `enforced` (cgroups), `NOT enforced` (it runs raw work
 * without cgroups), or `-` (it runs no raw work). Throws nothing.
 */
function limitsColumn(w: Worker): string {
  if (!w.features.includes(RAW_EXEC_FEATURE)) return "-";
  return w.features.includes(CGROUPS_FEATURE) ? "enforced" : "NOT enforced";
}

function limitsDetail(w: Worker): string {
  if (!w.features.includes(RAW_EXEC_FEATURE))
    return "no raw exec (tasks and process VMs never run here)";
  return w.features.includes(CGROUPS_FEATURE)
    ? "CPU and memory requests are hard limits (cgroups)"
    : "limits not enforced: tasks may use more CPU and memory than they asked for";
}

/** A worker's status, noting a drain that outlives it being offline. */
function workerStatus(w: Worker): string {
  return w.status === "offline" && w.drain ? "offline (drained)" : w.status;
}

function truncate(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length - 1)}…`;
}
