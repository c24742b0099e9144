/**
 * A fleet of lightweight agent-only workers in this one process, each a real {@link RemoteAgent}
 * (the one reconcile loop, the assignment long poll, heartbeats, the disconnect guard) over a
 * real {@link AgentHttpLink} to the servers: the agent protocol as `blixard agent start` speaks
 * it, without drivers. A task whose command is {@link HOLD_COMMAND} runs until it is stopped;
 * any other "starts" and succeeds at once.
 *
 * Each agent is given every server, starting at a different one (agent i at server i mod n), as
 * real agents spread over a cluster would be. With TLS each agent presents its own node
 * certificate, so each has its own `https.Agent`: a pool holds one identity (the agent's options
 * are merged into every connection it makes), and the servers let node N report for node N only.
 * Each agent's pool is the one a real agent makes (`agentHttpsPool`; insecure agents, the link's
 * own), so the bench opens as many connections as real agents would.
 *
 * The fleet counts what the protocol did, from the agents' side: when each report was
 * acknowledged (the server answers a report once it is applied, so a `taskStarted`
 * acknowledgement is the moment the task is `running` in the model), heartbeats sent, and each
 * time a task was started here and on which node (a task started twice with the same attempt
 * would be a duplicate).
 */
import type { Agent as HttpsAgent } from "node:https";
import type { Clock } from "../../src/common/clock.js";
import type { Logger } from "../../src/common/logger.js";
import { AgentHttpLink, agentHttpsPool } from "../../src/orchestrator/agent/remote/http-link.js";
import { RemoteAgent } from "../../src/orchestrator/agent/remote/remote-agent.js";
import type { TaskRunnerPort } from "../../src/orchestrator/agent/ports.js";
import type { OrchestratorCommand } from "../../src/statemachine/orchestrator/commands.js";
import { syntheticResult } from "../../src/statemachine/orchestrator/synthetic-result.js";
import type { Resources, TaskResult } from "../../src/statemachine/orchestrator/types.js";
import type { IssuedCertificate } from "../../src/security/index.js";
import { issueAgentCertificate, type ScaleTls } from "./scale-tls.js";

/** The command of a task that runs until stopped (the kill phase's work). */
export const HOLD_COMMAND = "hold";
/** What agents report they offer (tasks need raw_exec, implicitly). */
const AGENT_FEATURES = ["raw_exec"] as const;

/** The result of a task that "finishes at once" (the fleet's and the placement bench's). */
export const SUCCEEDED: TaskResult = Object.freeze({
  exitCode: 0,
  stdout: "",
  stderr: "",
  stdoutTruncated: false,
  stderrTruncated: false,
  durationMs: 0,
  error: "",
});

/** Options of {@link AgentFleet}. */
export interface AgentFleetOptions {
  /** The servers' API base URLs. */
  readonly servers: readonly string[];
  /** Absent: plain HTTP. */
  readonly tls?: ScaleTls;
  readonly count: number;
  /** The first agent's node id (the rest follow). */
  readonly firstNodeId: number;
  readonly capacity: Resources;
  readonly workerDeadAfterMs: number;
  /** Default: the agent's own (a quarter of the dead-after time). */
  readonly heartbeatIntervalMs?: number;
  readonly clock: Clock;
}

/** One start of a task on an agent of the fleet. */
export interface TaskRunRecord {
  readonly nodeId: number;
  readonly attempt: number;
  readonly atMs: number;
}

/** Warnings the agents logged, by message (the fleet is otherwise silent). */
class CountingLogger implements Logger {
  readonly warnings = new Map<string, number>();
  /** The fields of each message's first warning. */
  readonly first = new Map<string, Record<string, unknown> | undefined>();
  debug(): void {}
  info(): void {}
  warn(message: string, fields?: Record<string, unknown>): void {
    this.warnings.set(message, (this.warnings.get(message) ?? 0) + 1);
    if (!this.first.has(message)) this.first.set(message, fields);
  }
}

/** See the module comment. */
export class AgentFleet {
  readonly #options: AgentFleetOptions;
  readonly #agents: RemoteAgent[] = [];
  readonly #pools: HttpsAgent[] = [];
  readonly #killed = new Set<number>();
  readonly #certificates: IssuedCertificate[] = [];
  /** Round trips of acknowledged heartbeats, ms (for percentiles). */
  readonly heartbeatRttMs: number[] = [];
  readonly log = new CountingLogger();
  /** Node ids whose `registerWorker` was acknowledged. */
  readonly registered = new Set<number>();
  /** First acknowledged `taskStarted` per task id (clock ms). */
  readonly runningAtMs = new Map<string, number>();
  /** First acknowledged `taskFinished` per task id (clock ms). */
  readonly finishedAtMs = new Map<string, number>();
  /**
   * Task ids whose `taskFinished` this fleet has sent (alone or in a batch), acknowledged or not:
   * a report whose answer was lost may still have applied (see `scale.bench.ts`).
   */
  readonly finishSent = new Set<string>();
  /** Every start of a task here, by task id. */
  readonly runs = new Map<string, TaskRunRecord[]>();
  /** Starts of an attempt already started here (should stay 0). */
  duplicateStarts = 0;
  heartbeatsSent = 0;
  /** Reports sent, each report of a batch counted (retries included). */
  reportsSent = 0;
  /** Report requests sent: one per single report or per `agentReports` batch (one log entry each). */
  reportRequests = 0;
  /** Assignment polls answered, and the tasks those answers carried in all. */
  pollAnswers = 0;
  tasksInAnswers = 0;
  /** TLS connections the agents opened (each a handshake on both sides). */
  connectionsOpened = 0;
  /** Called with a task id when it is acknowledged running (after `runningAtMs` is set). */
  onRunning: ((taskId: string) => void) | undefined;

  constructor(options: AgentFleetOptions) {
    this.#options = options;
  }

  /**
   * Issues every agent's certificate now (ECDSA P-256, a few ms each), so that {@link start}
   * measures registration, not the CA.
   */
  async issueCertificates(): Promise<void> {
    const { tls, count } = this.#options;
    if (tls === undefined) return;
    for (let i = this.#certificates.length; i < count; i++) {
      this.#certificates.push(await issueAgentCertificate(tls, this.nodeId(i)));
    }
  }

  /** The node id of agent `i`. */
  nodeId(i: number): number {
    return this.#options.firstNodeId + i;
  }

  /** How many agents were started. */
  get size(): number {
    return this.#agents.length;
  }

  /**
   * Builds and starts every agent, `wave` at a time `gapMs` apart (a thousand TLS handshakes at
   * once would only measure the handshake storm).
   */
  async start(wave = 50, gapMs = 20): Promise<void> {
    const { count, servers, tls } = this.#options;
    const certificates = this.#certificates;
    const urls = servers.map((s) => new URL(s));
    for (let i = 0; i < count; i++) {
      const nodeId = this.nodeId(i);
      const rotated = [...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)];
      let link: AgentHttpLink;
      if (tls === undefined) {
        link = new AgentHttpLink({ nodeId, servers: rotated, log: this.log });
      } else {
        const issued = certificates[i] ?? (await issueAgentCertificate(tls, nodeId));
        const credentials = { ca: tls.ca.certPem, cert: issued.certPem, key: issued.keyPem };
        // The pool a real agent makes (`AgentHttpLink`'s default), counted.
        const pool = agentHttpsPool(credentials);
        // Counted: a new connection costs a TLS handshake on both sides.
        const create = pool.createConnection.bind(pool);
        pool.createConnection = (...args: Parameters<typeof create>) => {
          this.connectionsOpened++;
          return create(...args);
        };
        this.#pools.push(pool);
        link = new AgentHttpLink({
          nodeId,
          servers: rotated,
          tls: credentials,
          httpsAgent: pool,
          log: this.log,
        });
      }
      const agent = new RemoteAgent({
        nodeId,
        link: this.#countingLink(nodeId, link),
        clock: this.#options.clock,
        log: this.log,
        runTask: this.#runTask(nodeId),
        vmDrivers: new Map(),
        capacity: this.#options.capacity,
        features: AGENT_FEATURES,
        workerDeadAfterMs: this.#options.workerDeadAfterMs,
        ...(this.#options.heartbeatIntervalMs === undefined
          ? {}
          : { heartbeatIntervalMs: this.#options.heartbeatIntervalMs }),
      });
      this.#agents.push(agent);
      agent.start();
      if ((i + 1) % wave === 0) await new Promise((r) => setTimeout(r, gapMs));
    }
  }

  /** The node ids of agents (not killed) that have a task of `command` running now. */
  holders(taskIds: Iterable<string>): Map<number, string[]> {
    const byNode = new Map<number, string[]>();
    for (const id of taskIds) {
      const last = this.runs.get(id)?.at(-1);
      if (last === undefined || this.#killed.has(last.nodeId)) continue;
      byNode.set(last.nodeId, [...(byNode.get(last.nodeId) ?? []), id]);
    }
    return byNode;
  }

  /**
   * Kills the agents of `nodeIds` at once: they stop polling, heartbeating and reporting, and
   * their work is left as it is (not stopped, not reported): to the cluster they went silent.
   */
  async kill(nodeIds: readonly number[]): Promise<void> {
    for (const id of nodeIds) this.#killed.add(id);
    await Promise.all(
      nodeIds.flatMap((id) => {
        const agent = this.#agents[id - this.#options.firstNodeId];
        return agent === undefined ? [] : [agent.close({ stopWork: false })];
      }),
    );
  }

  /** Stops every agent and the work it runs; closes the pools. */
  async close(): Promise<void> {
    await Promise.all(this.#agents.map((a) => a.close()));
    for (const pool of this.#pools) pool.destroy();
  }

  #countingLink(
    nodeId: number,
    link: AgentHttpLink,
  ): Pick<AgentHttpLink, "assignments" | "heartbeat" | "propose"> {
    return {
      assignments: async (after, waitMs, signal) => {
        const answer = await link.assignments(after, waitMs, signal);
        this.pollAnswers++;
        this.tasksInAnswers += answer.tasks.length;
        return answer;
      },
      heartbeat: async () => {
        this.heartbeatsSent++;
        const sentAt = performance.now();
        const answer = await link.heartbeat();
        this.heartbeatRttMs.push(performance.now() - sentAt);
        return answer;
      },
      propose: async (command: OrchestratorCommand) => {
        this.reportRequests++;
        this.reportsSent += command.type === "agentReports" ? command.reports.length : 1;
        for (const report of command.type === "agentReports" ? command.reports : [command]) {
          if (report.type === "taskFinished") this.finishSent.add(report.id);
        }
        const answer = await link.propose(command);
        if (command.type !== "agentReports") this.#acknowledged(nodeId, command);
        else {
          // Only the reports the batch applied (a refused one is stale: it says nothing new).
          const items = (answer as { items?: readonly { ok: boolean }[] } | null)?.items;
          command.reports.forEach((report, i) => {
            if (items?.[i]?.ok === true) this.#acknowledged(nodeId, report);
          });
        }
        return answer;
      },
    };
  }

  #acknowledged(nodeId: number, command: OrchestratorCommand): void {
    const now = this.#options.clock.now();
    if (command.type === "registerWorker") this.registered.add(nodeId);
    else if (command.type === "taskStarted") {
      if (!this.runningAtMs.has(command.id)) {
        this.runningAtMs.set(command.id, now);
        this.onRunning?.(command.id);
      }
    } else if (command.type === "taskFinished") {
      if (!this.finishedAtMs.has(command.id)) this.finishedAtMs.set(command.id, now);
    }
  }

  #runTask(nodeId: number): TaskRunnerPort {
    return (spec, { signal, onStarted, taskId, attempt }) => {
      const runs = this.runs.get(taskId);
      if (runs?.some((r) => r.attempt === attempt) === true) this.duplicateStarts++;
      const record = { nodeId, attempt, atMs: this.#options.clock.now() };
      if (runs === undefined) this.runs.set(taskId, [record]);
      else runs.push(record);
      // Not synchronously: `Agent.#startTask` reads the attempt's record in onStarted, and that
      // record exists only once runTask has returned (a real driver starts a process first).
      const started = Promise.resolve().then(onStarted);
      if (spec.command !== HOLD_COMMAND) {
        return started.then(() => ({ outcome: "succeeded", result: SUCCEEDED }));
      }
      return new Promise((resolve) => {
        const stop = (): void =>
          resolve({ outcome: "cancelled", result: syntheticResult("stopped by the bench") });
        if (signal.aborted) stop();
        else signal.addEventListener("abort", stop, { once: true });
      });
    };
  }
}
