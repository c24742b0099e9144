/**
 * A simulated agent-only worker's link to the servers: what `AgentHttpLink` does over HTTPS, done
 * over the simulated network. Each call travels to one server (a few ms), runs there on the
 * server's clock (held while it is paused) against its {@link AgentHub} or its command port, and
 * the answer travels back. A cut link (a partition between the agent and that server, either way)
 * or a crashed server gives no answer: the call fails after its deadline, and the link moves on to
 * the next server, as the real one does after a connection error or an UNAVAILABLE answer.
 *
 * A heartbeat that reaches a follower is relayed by that server to the leader in a batch, over
 * the peer network (see `hosts.ts`; a real server relays them the same way), so it gets through
 * only if the follower-to-leader link is up too. A report is proposed on the server it reached, whose runtime
 * forwards it to the leader like any write ({@link SimProposer}).
 */
import { NotLeaderError, TimeoutError, UnavailableError } from "../../common/errors.js";
import type { Random } from "../../common/random.js";
import type {
  AssignmentsAnswer,
  HeartbeatAnswer,
} from "../../orchestrator/agent/remote/http-link.js";
import type { NodeId } from "../../raft/types.js";
import type { OrchestratorCommand } from "../../statemachine/orchestrator/commands.js";
import type { SimCluster } from "../cluster.js";
import type { SimNetwork } from "../network.js";
import { between } from "../rng.js";
import type { Scheduler } from "../scheduler.js";
import type { OrchestratorHosts, NodeHost } from "./hosts.js";
import { SimProposer } from "./proposer.js";

/** One hop's transit time, in virtual ms. */
const HOP_MS = { min: 1, max: 5 } as const;
/** Deadline of a heartbeat or a report (the real link's is 5 s; the simulated dead-after is 2 s). */
export const SIM_AGENT_REQUEST_TIMEOUT_MS = 1000;

/** What the link reaches the servers through. */
export interface SimAgentLinkOptions {
  /** The agent's node id (never a Raft member). */
  readonly nodeId: NodeId;
  readonly scheduler: Scheduler;
  readonly network: SimNetwork;
  readonly cluster: SimCluster;
  readonly hosts: OrchestratorHosts;
  readonly random: Random;
}

/** See the module comment. */
export class SimAgentLink {
  readonly #options: SimAgentLinkOptions;
  #cursor = 0;
  #closed = false;

  constructor(options: SimAgentLinkOptions) {
    this.#options = options;
    // Agents spread over the servers as real ones do (each starts at a different one).
    this.#cursor = options.nodeId;
  }

  /** Ends every call in flight's effect: later answers are dropped. */
  close(): void {
    this.#closed = true;
  }

  /** The assignment long poll. */
  assignments(after: number, waitMs: number, signal?: AbortSignal): Promise<AssignmentsAnswer> {
    const nodeId = this.#options.nodeId;
    return this.#call(
      (_server, host) => host.hub.assignments(nodeId, after, waitMs, signal),
      waitMs + SIM_AGENT_REQUEST_TIMEOUT_MS,
      signal,
    );
  }

  /** A heartbeat, forwarded by a follower to the leader. */
  heartbeat(): Promise<HeartbeatAnswer> {
    const nodeId = this.#options.nodeId;
    return this.#call(
      (_server, host) => this.#heartbeatOn(host, nodeId),
      SIM_AGENT_REQUEST_TIMEOUT_MS,
    );
  }

  /** A report, proposed on the server reached (its runtime forwards it to the leader). */
  propose(command: OrchestratorCommand): Promise<unknown> {
    const { scheduler, cluster } = this.#options;
    return this.#call(
      (server, host) =>
        new SimProposer({
          nodeId: server,
          incarnation: host.incarnation,
          scheduler,
          cluster,
          forward: true,
        }).propose(command),
      SIM_AGENT_REQUEST_TIMEOUT_MS,
    );
  }

  async #heartbeatOn(host: NodeHost, nodeId: NodeId): Promise<HeartbeatAnswer> {
    try {
      // A follower relays it to the leader in a batch (its hub's relay, as on a real server).
      return await host.hub.heartbeat(nodeId);
    } catch (error) {
      if (error instanceof NotLeaderError) {
        throw new UnavailableError("no leader is known yet; retry shortly");
      }
      throw error;
    }
  }

  /**
   * Runs `fn` on the current server after a hop; its answer comes back after another. Fails with
   * UnavailableError when the server is down (and moves on), TimeoutError when no answer came
   * within `timeoutMs` (a cut link, a paused server; moves on too).
   */
  #call<T>(
    fn: (server: NodeId, host: NodeHost) => Promise<T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<T> {
    const { scheduler, network, cluster, hosts, nodeId, random } = this.#options;
    const servers = cluster.memberIds();
    const server = servers[this.#cursor % Math.max(1, servers.length)];
    const moveOn = (): void => {
      this.#cursor++;
    };
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const onAbort = (): void =>
        settle(() => reject(new UnavailableError("the call was abandoned")));
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        // A long-lived signal (the agent's) would otherwise keep one listener per call.
        signal?.removeEventListener("abort", onAbort);
        outcome();
      };
      const timer = scheduler.schedule(timeoutMs, () =>
        settle(() => {
          moveOn();
          reject(new TimeoutError(`server ${server ?? "?"} did not answer in ${timeoutMs} ms`));
        }),
      );
      signal?.addEventListener("abort", onAbort, { once: true });
      const hop = (): number => between(random, HOP_MS.min, HOP_MS.max);
      scheduler.schedule(hop(), () => {
        if (settled || this.#closed) return;
        const slot = server === undefined ? undefined : cluster.slots.get(server);
        const host = server === undefined ? undefined : hosts.host(server);
        if (server === undefined || slot?.state === "crashed" || slot?.state === "failed") {
          scheduler.schedule(hop(), () =>
            settle(() => {
              moveOn();
              reject(new UnavailableError(`server ${server ?? "?"} refused the connection`));
            }),
          );
          return;
        }
        // A cut link or a server not serving yet: the request is lost, the deadline answers.
        if (network.linkCut(nodeId, server) || host === undefined || slot?.clock === undefined) {
          return;
        }
        const incarnation = slot.incarnation;
        slot.clock.fire(() => {
          if (slot.incarnation !== incarnation || this.#closed) return;
          let promise: Promise<T>;
          try {
            promise = fn(server, host);
          } catch (error) {
            promise = Promise.reject(error as Error);
          }
          const answer = (outcome: () => void): void => {
            if (slot.incarnation !== incarnation || slot.clock?.isDead !== false) return;
            scheduler.schedule(hop(), () => {
              if (network.linkCut(server, nodeId)) return;
              settle(outcome);
            });
          };
          promise.then(
            (value) => answer(() => resolve(value)),
            (error: unknown) =>
              answer(() => {
                if (error instanceof UnavailableError) moveOn();
                reject(error as Error);
              }),
          );
        });
      });
    });
  }
}
