/**
 * An agent-only worker (`blixard agent start`): the same reconcile loop as a server's agent
 * (`../agent.ts`) over a different view and proposer. No Raft, no log:
 *
 * - the view is the last answer of the assignment long poll (`assignment-poller.ts`,
 *   `remote-view.ts`: never an older index than the one acted on);
 * - reports go through the HTTP link as the agent's `Proposer` (the same `Reporter` retries);
 * - heartbeats (`heartbeat-loop.ts`) keep it alive in the leader's eyes;
 * - the disconnect guard (`disconnect-guard.ts`) stops its work when no heartbeat was
 *   acknowledged for the grace; on the next acknowledged one the agent marks its worker offline
 *   (the stopped tasks are lost and retried, its VMs move, as when the leader marks it), then
 *   reconciles from an answer asked for after that and registers again.
 *
 * The reconcile loop starts once an answer arrived and a heartbeat was acknowledged, so a
 * restarted agent acts on what the cluster says, not on an empty view, and never runs work
 * before its disconnect grace is counting: an agent whose polls are answered by a server that
 * cannot reach the leader must not run work the leader may mark offline and move.
 */
import type { Clock } from "../../../common/clock.js";
import { isBlixardError } from "../../../common/errors.js";
import type { Logger } from "../../../common/logger.js";
import type { NodeId } from "../../../raft/types.js";
import type { Resources, VmDriver } from "../../../statemachine/orchestrator/types.js";
import type { VmDriverPort } from "../../drivers/vm-driver.js";
import { DEFAULT_WORKER_DEAD_AFTER_MS } from "../../liveness.js";
import { Agent } from "../agent.js";
import type { TaskRunnerPort } from "../ports.js";
import { AssignmentPoller } from "./assignment-poller.js";
import { DisconnectGuard } from "./disconnect-guard.js";
import { defaultHeartbeatIntervalMs, HeartbeatLoop } from "./heartbeat-loop.js";
import type { AgentHttpLink } from "./http-link.js";
import { RemoteAssignmentsView } from "./remote-view.js";

/**
 * The default disconnect grace: the workers' dead-after time. Counted from the sending of the
 * last acknowledged heartbeat, it ends no later than the leader marks the agent offline (see
 * `disconnect-guard.ts`), so work is stopped here before it can be placed elsewhere, while an
 * outage shorter than that (a leader election, a server restart) stops nothing.
 */
export function defaultDisconnectGraceMs(workerDeadAfterMs: number): number {
  return workerDeadAfterMs;
}

/** Options of {@link RemoteAgent}. */
export interface RemoteAgentOptions {
  readonly nodeId: NodeId;
  /** With `disks`, the agent discards the disks of VMs deleted or moved off it (see `Agent`). */
  readonly link: Pick<AgentHttpLink, "assignments" | "heartbeat" | "propose"> &
    Partial<Pick<AgentHttpLink, "disks">>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly runTask: TaskRunnerPort;
  readonly vmDrivers: ReadonlyMap<VmDriver, VmDriverPort>;
  readonly capacity: Resources;
  readonly features: readonly string[];
  /** The servers' dead-after time (default {@link DEFAULT_WORKER_DEAD_AFTER_MS}). */
  readonly workerDeadAfterMs?: number;
  /** Default: a quarter of the dead-after time. */
  readonly heartbeatIntervalMs?: number;
  /** Default {@link defaultDisconnectGraceMs}. */
  readonly disconnectGraceMs?: number;
  /** How long a poll waits on the server (default `DEFAULT_POLL_WAIT_MS`). */
  readonly pollWaitMs?: number;
  /** The reconcile loop's resync period (default its own). */
  readonly resyncMs?: number;
  /**
   * Called once when the cluster refuses this agent for good (its id is a server's: CONFLICT;
   * its certificate is not node N's: PERMISSION_DENIED, UNAUTHENTICATED): retrying cannot help.
   */
  readonly onFatal?: (error: Error) => void;
}

/** Codes after which proposing the same report again cannot help. */
const FINAL_REPORT_CODES = new Set(["CONFLICT", "INVALID_ARGUMENT", "NOT_FOUND", "TOO_LARGE"]);

/** Codes of a heartbeat refusal that no retry can mend. */
const FATAL_CODES = new Set(["CONFLICT", "PERMISSION_DENIED", "UNAUTHENTICATED"]);

/** See the module comment. */
export class RemoteAgent {
  readonly view: RemoteAssignmentsView;
  readonly agent: Agent;
  readonly #options: RemoteAgentOptions;
  readonly #poller: AssignmentPoller;
  readonly #heartbeats: HeartbeatLoop;
  #guard: DisconnectGuard | undefined;
  #started = false;
  /** A heartbeat was acknowledged once (the disconnect grace counts from then on). */
  #acked = false;
  #closed = false;
  /** After a reconnect: resume once an answer asked for at or after this time arrives. */
  #resumeAfterMs: number | undefined;
  #warnedGrace = false;
  #fatalReported = false;
  #handingBack = false;
  /** The grace ran out while tasks or VMs ran here: they were stopped and must be handed back. */
  #stoppedWork = false;
  /** Times the grace ran out (for tests and status). */
  disconnects = 0;

  constructor(options: RemoteAgentOptions) {
    this.#options = options;
    const deadAfterMs = options.workerDeadAfterMs ?? DEFAULT_WORKER_DEAD_AFTER_MS;
    const { link } = options;
    this.view = new RemoteAssignmentsView(
      options.nodeId,
      link.disks === undefined ? undefined : (names) => link.disks!(names),
    );
    this.agent = new Agent({
      nodeId: options.nodeId,
      clock: options.clock,
      queries: this.view,
      proposer: options.link,
      runTask: options.runTask,
      vmDrivers: options.vmDrivers,
      capacity: options.capacity,
      features: options.features,
      log: options.log,
      ...(options.resyncMs === undefined ? {} : { resyncMs: options.resyncMs }),
    });
    this.#poller = new AssignmentPoller({
      fetch: (after, waitMs, signal) => options.link.assignments(after, waitMs, signal),
      view: this.view,
      clock: options.clock,
      log: options.log,
      ...(options.pollWaitMs === undefined ? {} : { waitMs: options.pollWaitMs }),
      onAnswer: (requestedAtMs) => this.#onAnswer(requestedAtMs),
    });
    this.#heartbeats = new HeartbeatLoop({
      send: () =>
        options.link.heartbeat().catch((error: unknown) => {
          if (isBlixardError(error) && FATAL_CODES.has(error.code)) this.#fatal(error);
          throw error;
        }),
      clock: options.clock,
      log: options.log,
      intervalMs: options.heartbeatIntervalMs ?? defaultHeartbeatIntervalMs(deadAfterMs),
      onAck: (sentAtMs, answer) => {
        if (
          answer.workerDeadAfterMs > 0 &&
          answer.workerDeadAfterMs < this.disconnectGraceMs &&
          !this.#warnedGrace
        ) {
          this.#warnedGrace = true;
          options.log.warn(
            "the disconnect grace is longer than the leader's --worker-dead-after-ms: cut off, " +
              "this agent may run work the cluster has moved elsewhere; give the agent the " +
              "servers' --worker-dead-after-ms",
            {
              disconnectGraceMs: this.disconnectGraceMs,
              workerDeadAfterMs: answer.workerDeadAfterMs,
            },
          );
        }
        this.#guard?.contact(sentAtMs);
        if (!this.#acked) {
          this.#acked = true;
          if (this.view.answered) this.#onAnswer(this.#options.clock.now());
        }
      },
    });
  }

  /** The grace after which a cut-off agent stops its work. */
  get disconnectGraceMs(): number {
    return (
      this.#options.disconnectGraceMs ??
      defaultDisconnectGraceMs(this.#options.workerDeadAfterMs ?? DEFAULT_WORKER_DEAD_AFTER_MS)
    );
  }

  /** Heartbeats sent and not yet answered (for tests and status). */
  get heartbeatsInFlight(): number {
    return this.#heartbeats.inFlight;
  }

  /** True while cut off past the grace (work stopped). */
  get disconnected(): boolean {
    return this.#guard?.disconnected ?? false;
  }

  /**
   * Starts polling and heartbeating; the reconcile loop starts with the first answer after the
   * first acknowledged heartbeat.
   */
  start(): void {
    this.#guard = new DisconnectGuard({
      clock: this.#options.clock,
      graceMs: this.disconnectGraceMs,
      onDisconnected: (silentMs) => this.#onDisconnected(silentMs),
      onReconnected: () => this.#onReconnected(),
    });
    this.#heartbeats.start();
    this.#poller.start();
  }

  /** Stops everything; with `stopWork` (default) also the work this agent runs, unreported. */
  async close(options: { readonly stopWork?: boolean } = {}): Promise<void> {
    this.#closed = true;
    this.#guard?.close();
    this.#heartbeats.close();
    this.#poller.close();
    await this.agent.close(options);
  }

  #onAnswer(requestedAtMs: number): void {
    if (this.#closed) return;
    if (this.#resumeAfterMs !== undefined) {
      // Reconnected: wait for an answer asked for since (the view may predate the partition).
      if (requestedAtMs < this.#resumeAfterMs) return;
      this.#resumeAfterMs = undefined;
      this.#options.log.info("reconnected: reconciling with the cluster's assignments again", {
        index: this.view.index,
      });
      this.agent.resume();
    }
    if (!this.#started) {
      if (!this.#acked) return;
      this.#started = true;
      this.agent.start();
      return;
    }
    this.agent.notify();
  }

  #fatal(error: Error): void {
    if (this.#fatalReported || this.#closed) return;
    this.#fatalReported = true;
    this.#options.onFatal?.(error);
  }

  #onDisconnected(silentMs: number): void {
    if (this.#closed) return;
    this.disconnects++;
    this.#resumeAfterMs = undefined;
    this.#stoppedWork ||=
      this.agent.runningTasks().length > 0 || this.agent.runningVms().length > 0;
    this.#options.log.warn(
      "cut off from the cluster for the disconnect grace: stopping every task and VM here " +
        "(the cluster moves them elsewhere)",
      { silentMs, disconnectGraceMs: this.disconnectGraceMs },
    );
    void this.agent.suspend();
  }

  #onReconnected(): void {
    if (this.#closed || this.#handingBack) return;
    // The work stopped at the grace may still be assigned here (a new leader gave this agent
    // full grace, or the leader's clock ran behind): say so first, as the leader would have,
    // by marking this worker offline. Its tasks are then lost and retried (within their
    // attempts) and its VMs move, exactly as when the leader marks a silent worker; the agent
    // registers again on the fresh answer.
    // An agent that stopped nothing has nothing to hand back: what the cluster assigned it
    // meanwhile it has not started, and starts now if the cluster still assigns it here.
    this.#handingBack = true;
    const handBack = this.#stoppedWork;
    this.#options.log.info(
      handBack
        ? "a heartbeat was acknowledged again; handing back the stopped work"
        : "a heartbeat was acknowledged again; refreshing assignments",
    );
    void (handBack ? this.#markSelfOffline() : Promise.resolve()).then(() => {
      this.#handingBack = false;
      if (handBack && !this.disconnected) this.#stoppedWork = false;
      if (this.#closed || this.disconnected) return;
      // The view may be older than the partition: act only on an answer asked for from now on.
      this.#resumeAfterMs = this.#options.clock.now();
      this.#poller.refresh();
    });
  }

  /** Proposes `markWorkerOffline` for this node until the cluster answers it. Throws nothing. */
  async #markSelfOffline(): Promise<void> {
    const { link, nodeId, clock, log } = this.#options;
    for (let attempt = 0; !this.#closed && !this.disconnected; attempt++) {
      try {
        await link.propose({ type: "markWorkerOffline", nodeId });
        return;
      } catch (error) {
        // NOT_FOUND (never registered) and the like: nothing to hand back.
        if (isBlixardError(error) && FINAL_REPORT_CODES.has(error.code)) return;
        if (attempt === 3) {
          log.warn("could not hand back the stopped work yet; retrying", {
            error: (error as Error).message,
          });
        }
        await new Promise<void>((resolve) =>
          clock.setTimer(Math.min(2000, 100 * 2 ** attempt), resolve),
        );
      }
    }
  }
}
