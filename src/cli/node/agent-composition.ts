/**
 * The composition root of an agent-only worker: the HTTP link to the servers with the node's
 * certificate, the local drivers (the same as a server's worker) and the remote agent around
 * the one reconcile loop, on the system clock.
 */
import type { NodeId } from "../../raft/types.js";
import { SystemClock } from "../../platform/index.js";
import { AgentHttpLink, type AgentTls } from "../../orchestrator/agent/remote/http-link.js";
import {
  RemoteAgent,
  defaultDisconnectGraceMs,
} from "../../orchestrator/agent/remote/remote-agent.js";
import { defaultHeartbeatIntervalMs } from "../../orchestrator/agent/remote/heartbeat-loop.js";
import { packageVersion } from "../version.js";
import type { JsonLogger } from "../log.js";
import { openLocalDrivers } from "./local-drivers.js";
import type { ResolvedWorker } from "./worker-options.js";

/** Options of {@link startAgent}. */
export interface StartAgentOptions {
  readonly nodeId: NodeId;
  readonly servers: readonly URL[];
  /** Absent: plain HTTP (`--insecure`), and live migrations unencrypted. */
  readonly tls?: AgentTls;
  /** The cluster the agent's certificate names it in (its migrations check the target's). */
  readonly clusterId: string;
  readonly dataDir: string;
  readonly worker: ResolvedWorker;
  readonly workerDeadAfterMs: number;
  readonly heartbeatIntervalMs?: number;
  readonly disconnectGraceMs?: number;
  readonly logger: JsonLogger;
}

/** A running agent. */
export interface RunningAgent {
  /** Stops the agent and the work it runs. Idempotent. */
  stop(): Promise<void>;
  /** Settles when it stopped: undefined after {@link stop}, the error after a fatal one. */
  readonly stopped: Promise<Error | undefined>;
}

/**
 * Starts the agent: kills what a previous life left running, then registers, heartbeats and
 * polls.
 * @throws InvalidArgumentError for server URLs that do not fit the TLS mode.
 */
export async function startAgent(options: StartAgentOptions): Promise<RunningAgent> {
  const { logger: log, nodeId } = options;
  const clock = new SystemClock();
  const heartbeatIntervalMs =
    options.heartbeatIntervalMs ?? defaultHeartbeatIntervalMs(options.workerDeadAfterMs);
  const disconnectGraceMs =
    options.disconnectGraceMs ?? defaultDisconnectGraceMs(options.workerDeadAfterMs);
  log.info("agent starting", {
    version: packageVersion(),
    servers: options.servers.map((s) => s.href),
    dataDir: options.dataDir,
    workerDeadAfterMs: options.workerDeadAfterMs,
    heartbeatIntervalMs,
    disconnectGraceMs,
  });
  const link = new AgentHttpLink({
    nodeId,
    servers: options.servers,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    log: log.child({ component: "link" }),
  });
  const drivers = await openLocalDrivers({
    nodeId,
    dataDir: options.dataDir,
    clock,
    host: options.worker.host,
    workloads: options.worker.workloads,
    vm: {
      ...options.worker.vm,
      // Migrations go over mutual TLS with the agent's node certificate.
      ...(options.tls === undefined
        ? {}
        : { migrationTls: { ...options.tls, clusterId: options.clusterId } }),
    },
    log,
  });
  let resolveStopped: (result: Error | undefined) => void = () => undefined;
  const stopped = new Promise<Error | undefined>((resolve) => (resolveStopped = resolve));
  let stopping: Promise<void> | undefined;
  const stop = (reason?: Error): Promise<void> => {
    stopping ??= (async () => {
      log.info("agent stopping", reason === undefined ? {} : { reason: reason.message });
      await agent
        .close()
        .catch((e: unknown) => log.warn("agent close failed", { error: String(e) }));
      await drivers.close().catch(() => undefined);
      log.info("agent stopped");
      resolveStopped(reason);
    })();
    return stopping;
  };
  const agent = new RemoteAgent({
    nodeId,
    link,
    clock,
    log: log.child({ component: "agent" }),
    runTask: drivers.runTask,
    vmDrivers: drivers.vmDrivers,
    capacity: options.worker.host.capacity,
    features: drivers.features,
    workerDeadAfterMs: options.workerDeadAfterMs,
    heartbeatIntervalMs,
    disconnectGraceMs,
    onFatal: (error) => {
      log.error("the cluster refuses this agent", { error: error.message });
      void stop(error);
    },
  });
  agent.start();
  log.info("agent started", {
    capacity: options.worker.host.capacity,
    features: drivers.features,
  });
  return { stop: () => stop(), stopped };
}
