/**
 * `blixard agent start`: an agent-only worker in the foreground. It is not a Raft member and
 * keeps no log: it registers with the servers as a worker, heartbeats, long-polls its
 * assignments, runs them with the same drivers as a server's worker and reports back (see
 * `orchestrator/agent/remote/`). SIGTERM or SIGINT stops it and the work it runs (the cluster
 * moves that work once the worker is marked offline).
 */
import { localAddressToward } from "../node/local-address.js";
import { stopWhenParentExits } from "../node/exit-with-parent.js";
import { Command } from "commander";
import { hasRaftLog, usage, usageAsync } from "./usage-errors.js";
import { isBlixardError, ERROR_CODES } from "../../common/errors.js";
import type { NodeId } from "../../raft/types.js";
import { DEFAULT_WORKER_DEAD_AFTER_MS } from "../../orchestrator/liveness.js";
import { HEARTBEAT_FRACTION_OF_DEAD_AFTER } from "../../orchestrator/agent/remote/heartbeat-loop.js";
import { JsonLogger, type CliLogLevel } from "../log.js";
import { applyConfigFile } from "../node/config-file.js";
import { tightenDataDir } from "../node/data-dir-modes.js";
import { DEFAULT_CLUSTER_ID } from "../node/node-config.js";
import { resolveAgentTls } from "../node/agent-tls.js";
import { acquireAgentLock } from "../node/agent-lock.js";
import {
  addNodeTlsOptions,
  addWorkerOptions,
  resolveWorker,
  setting,
  settingWithDefault,
  type NodeTlsFileFlags,
  type WorkerFlags,
} from "../node/worker-options.js";
import { parseEndpoints, parseLogLevel, parsePositiveInt } from "../options.js";

interface AgentStartOptions extends WorkerFlags, NodeTlsFileFlags {
  readonly servers?: string[];
  readonly nodeId?: number;
  readonly dataDir?: string;
  readonly clusterId?: string;
  readonly logLevel: CliLogLevel;
  readonly heartbeatIntervalMs?: number;
  readonly disconnectGraceMs?: number;
  readonly advertiseHost?: string;
}

/**
 * Where VMs live-migrating to this agent listen: `--advertise-host`, else the address this
 * machine uses toward the first server (other nodes reach it there), else, when that cannot be
 * found, loopback, with a warning. Throws nothing.
 */
async function advertisedHost(
  given: string | undefined,
  servers: readonly URL[],
  logger: JsonLogger,
): Promise<string> {
  if (given !== undefined) return given;
  const first = servers[0];
  try {
    if (first === undefined) throw new Error("no server given");
    const address = await localAddressToward(first);
    logger.info("VMs live-migrating here listen on the address used toward the servers", {
      advertiseHost: address,
    });
    return address;
  } catch (error) {
    logger.warn(
      "cannot tell which address other nodes reach this machine at: VMs live-migrating here " +
        "listen on 127.0.0.1, which only nodes of this machine reach; give --advertise-host",
      { error: (error as Error).message },
    );
    return "127.0.0.1";
  }
}

/** After a fatal error the process exits within this long even if a handle stays open. */
const FATAL_EXIT_GRACE_MS = 500;

/** Registers `agent start` on `program`. */
export function registerAgentCommands(program: Command): void {
  const agent = program
    .command("agent")
    .description("run an agent-only worker (no Raft, no log) against a cluster's servers");
  const start = agent
    .command("start")
    .description(
      "start an agent-only worker in the foreground (SIGTERM or Ctrl-C stops it and its work).\n\n" +
        "It registers node --node-id as a worker with the servers at --servers (any of them; it moves to the next when one is unreachable), sends heartbeats, long-polls the work assigned to it, runs it with the same drivers as `node start` and reports back. It is no Raft member: give it an id no server has, and a node certificate for that id from the cluster's CA (`blixard tls issue --node <id>`), read from <data-dir>/tls/ unless --tls-* say otherwise.\n\n" +
        `Cut off from every server for --disconnect-grace-ms, it stops its tasks and VMs (the cluster has moved them by then) and reconciles once a server answers again. Give it the servers' --worker-dead-after-ms: heartbeats go every ${HEARTBEAT_FRACTION_OF_DEAD_AFTER} of it and the grace defaults to it, so a cut-off agent stops its work no later than the leader marks it offline.`,
    )
    .addOption(setting("--config <file>", "settings from a JSON file (see the README)", "CONFIG"))
    .addOption(
      setting(
        "--servers <urls>",
        "the servers' API URLs, comma-separated (https://host:port)",
        "SERVERS",
        parseEndpoints,
      ),
    )
    .addOption(
      setting(
        "--node-id <n>",
        "this worker's node id: a positive integer no server has",
        "NODE_ID",
        parsePositiveInt,
      ),
    )
    .addOption(
      setting(
        "--data-dir <dir>",
        "data directory (its processes and VM disks; TLS files in tls/)",
        "DATA_DIR",
      ),
    )
    .addOption(
      settingWithDefault(
        "--cluster-id <name>",
        "the cluster's id (its node certificate names it)",
        "CLUSTER_ID",
        DEFAULT_CLUSTER_ID,
      ),
    )
    .addOption(
      setting(
        "--log-level <level>",
        "debug, info, warn, error or silent",
        "LOG_LEVEL",
        parseLogLevel,
      ).default("info"),
    )
    .addOption(
      settingWithDefault(
        "--heartbeat-interval-ms <ms>",
        "time between heartbeats",
        "HEARTBEAT_INTERVAL_MS",
        `${HEARTBEAT_FRACTION_OF_DEAD_AFTER} × --worker-dead-after-ms`,
        parsePositiveInt,
      ),
    )
    .addOption(
      settingWithDefault(
        "--advertise-host <host>",
        "the address other nodes reach this machine at: VMs live-migrating here listen on it",
        "ADVERTISE_HOST",
        "the address this machine uses toward the first of --servers",
      ),
    )
    .addOption(
      settingWithDefault(
        "--disconnect-grace-ms <ms>",
        "cut off from every server this long, stop the work running here",
        "DISCONNECT_GRACE_MS",
        "--worker-dead-after-ms",
        parsePositiveInt,
      ),
    );
  addWorkerOptions(start);
  addNodeTlsOptions(start);
  start.action(async (_options: AgentStartOptions, command: Command) => {
    const config = command.getOptionValue("config") as string | undefined;
    if (config !== undefined) usage(command, () => applyConfigFile(command, config));
    const options = command.opts<AgentStartOptions>();
    for (const [flag, value] of [
      ["--servers", options.servers],
      ["--node-id", options.nodeId],
      ["--data-dir", options.dataDir],
    ] as const) {
      if (value === undefined) {
        command.error(`error: ${flag} is required`, { exitCode: 64, code: "blixard.usage" });
      }
    }
    await runAgent(
      {
        ...options,
        servers: options.servers as string[],
        nodeId: options.nodeId as number,
        dataDir: options.dataDir as string,
      },
      command,
    );
  });
}

async function runAgent(
  options: AgentStartOptions & {
    readonly servers: string[];
    readonly nodeId: NodeId;
    readonly dataDir: string;
  },
  command: Command,
): Promise<void> {
  process.umask(0o077);
  const logger = new JsonLogger(options.logLevel, { nodeId: options.nodeId, role: "agent" });
  const tightened = await tightenDataDir(options.dataDir);
  if (tightened > 0) {
    logger.warn("tightened the data directory's modes to 0700 (directories) and 0600 (files)", {
      dataDir: options.dataDir,
      changed: tightened,
    });
  }
  if (await hasRaftLog(options.dataDir)) {
    command.error(
      `error: ${options.dataDir} is a server's data directory (it holds a raft log): give the ` +
        "agent a directory of its own",
      { exitCode: 64, code: "blixard.usage" },
    );
  }
  const clusterId = options.clusterId ?? DEFAULT_CLUSTER_ID;
  const tls = usage(command, () =>
    resolveAgentTls(options, { clusterId, nodeId: options.nodeId, dataDir: options.dataDir }),
  );
  const servers = options.servers.map((url) => new URL(url));
  if (tls === undefined) {
    logger.warn(
      "INSECURE: started with --insecure: this agent talks plain HTTP and proves nothing about " +
        "who it is; anyone who reaches the servers can act as it, and anyone on the path can " +
        "give it work. Never use it outside a test machine",
      { servers: servers.map((s) => s.href) },
    );
  }
  const advertiseHost = await advertisedHost(options.advertiseHost, servers, logger);
  const lock = await usageAsync(command, () => acquireAgentLock(options.dataDir));
  const worker = await usageAsync(command, () => resolveWorker(options, options.dataDir, logger));
  const { startAgent } = await import("../node/agent-composition.js");
  const running = await usageAsync(command, () =>
    startAgent({
      nodeId: options.nodeId,
      servers,
      ...(tls === undefined ? {} : { tls }),
      clusterId,
      dataDir: options.dataDir,
      worker: { ...worker, vm: { ...worker.vm, migrationHost: advertiseHost } },
      workerDeadAfterMs: options.workerDeadAfterMs ?? DEFAULT_WORKER_DEAD_AFTER_MS,
      ...(options.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
      ...(options.disconnectGraceMs === undefined
        ? {}
        : { disconnectGraceMs: options.disconnectGraceMs }),
      logger,
    }),
  );
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info("signal received", { signal });
    void running.stop();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const unwatchParent = stopWhenParentExits(() => onSignal("SIGHUP"));
  const failure = await running.stopped;
  process.off("SIGTERM", onSignal);
  process.off("SIGINT", onSignal);
  unwatchParent();
  await lock.release();
  if (failure !== undefined) {
    const exitCode = isBlixardError(failure) ? ERROR_CODES[failure.code].exitCode : 70;
    logger.error("agent exiting after a fatal error", { error: failure.message, exitCode });
    setTimeout(() => process.exit(exitCode), FATAL_EXIT_GRACE_MS).unref();
    throw failure;
  }
  setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
}
