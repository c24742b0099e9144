/**
 * `worker drain` waiting for the worker to be `drained`: it reads the worker and what is still
 * placed on it every {@link DRAIN_POLL_INTERVAL_MS}, and shows it on stderr: a live line on a
 * terminal (remaining tasks and VMs, time to the deadline), else one line per change (scripts and
 * CI logs get a short, stable record). Polling rather than the event stream: the question is a
 * count over several entities, which one read answers and an event does not.
 */
import type { BlixardClient, Worker } from "../../client/index.js";
import { ConflictError } from "../../common/errors.js";
import { formatDuration, formatTime } from "./orchestrator-format.js";
import { Spinner } from "./spinner.js";

/** How often the wait reads the worker again. */
export const DRAIN_POLL_INTERVAL_MS = 1000;

/** The most tasks one look counts (one page); more shows as "1000+". */
const MAX_COUNTED_TASKS = 1000;

/** What is left on a draining worker. */
export interface DrainProgress {
  readonly worker: Worker;
  /** Tasks assigned to or running on it; at most {@link MAX_COUNTED_TASKS}. */
  readonly tasks: number;
  /** True if there were more tasks than counted. */
  readonly moreTasks: boolean;
  readonly vms: number;
}

/** Reads the worker and counts what is placed on it. Throws the client's typed errors. */
export async function readDrainProgress(
  client: BlixardClient,
  nodeId: number,
): Promise<DrainProgress> {
  const orchestrator = client.orchestrator;
  const [worker, running, assigned, vms] = await Promise.all([
    orchestrator.getWorker(nodeId),
    orchestrator.listTasks({ nodeId, status: "running", limit: MAX_COUNTED_TASKS }),
    orchestrator.listTasks({ nodeId, status: "assigned", limit: MAX_COUNTED_TASKS }),
    orchestrator.listVms(),
  ]);
  const tasks = running.tasks.length + assigned.tasks.length;
  return {
    worker,
    tasks: Math.min(tasks, MAX_COUNTED_TASKS),
    moreTasks: tasks > MAX_COUNTED_TASKS || running.more || assigned.more,
    vms: vms.filter((vm) => vm.nodeId === nodeId).length,
  };
}

function plural(count: number, what: string, more = false): string {
  return `${count}${more ? "+" : ""} ${what}${count === 1 && !more ? "" : "s"}`;
}

/**
 * One line about a drain in progress. With `nowMs` (a terminal's live line) the deadline is shown
 * as time left, else as a time of day (a line that changes only when the drain does). Throws
 * nothing.
 */
export function describeDrainProgress(progress: DrainProgress, nowMs?: number): string {
  const { worker } = progress;
  const left = `${plural(progress.tasks, "task", progress.moreTasks)} and ${plural(progress.vms, "VM")} left`;
  const deadline = worker.drainDeadlineMs;
  let when = "";
  if (deadline !== undefined) {
    when =
      nowMs === undefined
        ? `; the rest moves at ${formatTime(deadline)}`
        : `; the rest moves in ${formatDuration(Math.max(0, Math.round(deadline - nowMs)))}`;
  }
  return `worker ${worker.nodeId} ${worker.status}: ${left}${when}`;
}

/** Options of {@link waitForDrain}. */
export interface WaitForDrainOptions {
  /** Where progress goes; a live line if it is a terminal. Default stderr. */
  readonly stream?: NodeJS.WriteStream;
  /** Default {@link DRAIN_POLL_INTERVAL_MS}. */
  readonly pollMs?: number;
}

/**
 * Waits until worker `nodeId` is `drained`, showing progress, and resolves with it.
 * @throws ConflictError if it is undrained or goes offline first (its remaining work is then
 *   handled as a lost node's); the client's typed errors.
 */
export async function waitForDrain(
  client: BlixardClient,
  nodeId: number,
  options: WaitForDrainOptions = {},
): Promise<Worker> {
  const stream = options.stream ?? process.stderr;
  const pollMs = options.pollMs ?? DRAIN_POLL_INTERVAL_MS;
  const live = stream.isTTY === true;
  const spinner = new Spinner(stream);
  let lastLine = "";
  try {
    for (;;) {
      const progress = await readDrainProgress(client, nodeId);
      const { worker } = progress;
      if (worker.status === "drained") return worker;
      if (worker.status !== "draining") {
        throw new ConflictError(
          worker.status === "offline"
            ? `worker ${nodeId} went offline before it was drained; what it still ran was moved as a lost node's work (an attempt spent)`
            : `worker ${nodeId} was undrained before it was drained; drain it again to move its work`,
        );
      }
      if (live) spinner.update(describeDrainProgress(progress, Date.now()));
      else {
        const line = describeDrainProgress(progress);
        if (line !== lastLine) stream.write(`${line}\n`);
        lastLine = line;
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  } finally {
    spinner.stop();
  }
}
