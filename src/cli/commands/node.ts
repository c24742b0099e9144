/**
 * `blixard node start`: runs one node in the foreground until SIGTERM or SIGINT, then shuts down
 * gracefully (API, node, transport, WAL) and exits 0.
 */
import { stopWhenParentExits } from "../node/exit-with-parent.js";
import type { RunningNode } from "../node/compose.js";
import { createRequire } from "node:module";
import { DEFAULT_AUDIT_LOG_MAX_BYTES } from "../../api/audit/audit-log.js";
import { DEFAULT_MAX_CONNECTIONS } from "../../api/server-defaults.js";
import { DEFAULT_CLUSTER_ID } from "../node/node-config.js";
import { ExitStatus } from "../exit-status.js";
import { join } from "node:path";
import { Command, Option } from "commander";
import { hasRaftLog, usage, usageAsync } from "./usage-errors.js";
import { ERROR_CODES, InternalError, isBlixardError } from "../../common/errors.js";
import { DEFAULT_HEARTBEAT_TICKS, defaultHeartbeatTicks } from "../../api/heartbeat-ticks.js";
import { JsonLogger, type CliLogLevel } from "../log.js";
import { applyConfigFile } from "../node/config-file.js";
import { tightenDataDir } from "../node/data-dir-modes.js";
import { parseInitialMembers, type InitialMember } from "../node/members.js";
import { readNodeConfig, resolveNodeConfig, writeNodeConfig } from "../node/node-config.js";
import { resolveNodeTls } from "../node/node-tls.js";
import {
  addNodeTlsOptions,
  addWorkerOptions,
  resolveWorker,
  setting,
  settingWithDefault,
  type WorkerFlags,
} from "../node/worker-options.js";
import {
  parseEndpoints,
  parseHostPort,
  parseLogLevel,
  parsePositiveInt,
  type HostPort,
} from "../options.js";

/** What `node/compose.ts` exports. */
type ComposeModule = typeof import("../node/compose.js");

interface NodeStartOptions extends WorkerFlags {
  readonly dataDir?: string;
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  readonly id?: number;
  readonly clusterId?: string;
  readonly peerListen?: HostPort;
  readonly apiListen?: HostPort;
  readonly initialMembers?: InitialMember[];
  readonly join?: string[];
  readonly logLevel: CliLogLevel;
  readonly snapshotEveryEntries?: number;
  readonly tlsCa?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly apiTlsCert?: string;
  readonly apiTlsKey?: string;
  readonly insecure?: boolean;
  readonly auditLogMaxBytes?: number;
  readonly apiMaxConnections?: number;
  readonly apiAllowedHost?: string;
  readonly apiAuth?: "enforce" | "insecure-open";
  readonly forceNewCluster?: boolean;
  /** False with `--no-worker`. */
  readonly worker?: boolean;
}

/**
 * Raft timing of a real node: a 25 ms tick, an election timeout of 10–20 ticks (250–500 ms), so
 * a dead leader is replaced in well under a second on a LAN, and a heartbeat every 4 ticks
 * (100 ms, etcd's default), so an idle cluster costs little CPU: each wakeup of an idle process
 * costs far more than the work it does. Check-quorum and pre-vote keep a slow or partitioned
 * node from disrupting a healthy leader. Raise the election ticks on a slow or congested
 * network (etcd's election timeout is 1 s); lower the heartbeat ticks to tolerate longer pauses
 * of a leader at the price of idle CPU.
 */
export const DEFAULT_TICK_MS = 25;

/** After a fatal error the process exits within this long even if a handle stays open. */
const FATAL_EXIT_GRACE_MS = 500;
/** Ticks without a leader before an election (`--election-ticks`). */
export const DEFAULT_ELECTION_TICKS = 10;

/** Registers `node start` on `program`. */
export function registerNodeCommands(program: Command): void {
  const node = program.command("node").description("run a Blixard node");
  const start = node
    .command("start")
    .description(
      // One line per paragraph: commander wraps them to the terminal; hard breaks got re-wrapped.
      "start a node in the foreground (SIGTERM or Ctrl-C stops it gracefully).\n\n" +
        "First start: give --id, --data-dir, --peer-listen, --api-listen and, to bootstrap a multi-node cluster, the same --initial-members on every node. Without --initial-members the node bootstraps a single-node cluster of itself. To join a running cluster instead, give --join with the API URL of any member: the node asks the cluster to add it as a learner (announcing its listen addresses) and catches up from a snapshot; then `blixard cluster promote <id>` makes it a voter. Give it the cluster's --cluster-id (peers refuse another cluster's nodes). The settings are stored in <data-dir>/node.json: a restart needs only --data-dir.\n\n" +
        "TLS is on by default: peers authenticate each other with certificates from the cluster's CA and the API serves HTTPS. The node reads <data-dir>/tls/ca.pem, node-<id>.pem and node-<id>-key.pem unless --tls-ca, --tls-cert, --tls-key say otherwise; make them with `blixard tls init` and `blixard tls issue --node <id>`.",
    )
    .addOption(setting("--config <file>", "settings from a JSON file (see the README)", "CONFIG"))
    .addOption(
      setting("--data-dir <dir>", "data directory (raft log, snapshots, node.json)", "DATA_DIR"),
    )
    .addOption(
      setting("--id <n>", "node id, a positive integer (first start)", "ID", parsePositiveInt),
    )
    .addOption(
      settingWithDefault(
        "--cluster-id <name>",
        "cluster id every member shares (first start)",
        "CLUSTER_ID",
        DEFAULT_CLUSTER_ID,
      ),
    )
    .addOption(
      setting(
        "--peer-listen <host:port>",
        "peer transport listen address (first start)",
        "PEER_LISTEN",
        parseHostPort,
      ),
    )
    .addOption(
      setting(
        "--api-listen <host:port>",
        "HTTP API listen address (first start)",
        "API_LISTEN",
        parseHostPort,
      ),
    )
    .addOption(
      setting(
        "--initial-members <list>",
        "bootstrap members: ID=PEER_HOST:PORT@API_HOST:PORT,... (first start)",
        "INITIAL_MEMBERS",
        parseInitialMembers,
      ),
    )
    .addOption(
      setting(
        "--join <urls>",
        "join a running cluster through a member's API URL(s), comma-separated (first start)",
        "JOIN",
        parseEndpoints,
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
        "--tick-ms <ms>",
        "raft tick interval",
        "TICK_MS",
        DEFAULT_TICK_MS,
        parsePositiveInt,
      ),
    )
    .addOption(
      settingWithDefault(
        "--election-ticks <n>",
        "ticks without a leader before an election: a random timeout in [n, 2n) ticks; at least 3",
        "ELECTION_TICKS",
        DEFAULT_ELECTION_TICKS,
        parsePositiveInt,
      ),
    )
    .addOption(
      settingWithDefault(
        "--heartbeat-ticks <n>",
        "ticks between a leader's heartbeats, fewer than --election-ticks",
        "HEARTBEAT_TICKS",
        `${DEFAULT_HEARTBEAT_TICKS}, or at most 40% of --election-ticks`,
        parsePositiveInt,
      ),
    )
    .addOption(
      settingWithDefault(
        "--audit-log-max-bytes <n>",
        "rotate <data-dir>/audit.log at this size; 5 old files are kept",
        "AUDIT_LOG_MAX_BYTES",
        DEFAULT_AUDIT_LOG_MAX_BYTES,
        parsePositiveInt,
      ),
    )
    .addOption(
      settingWithDefault(
        "--api-max-connections <n>",
        "most open connections to the API; more are refused",
        "API_MAX_CONNECTIONS",
        DEFAULT_MAX_CONNECTIONS,
        parsePositiveInt,
      ),
    )
    .addOption(
      settingWithDefault(
        "--api-tls-cert <file>",
        "another certificate for the HTTPS API",
        "API_TLS_CERT",
        "the node's",
      ),
    )
    .addOption(setting("--api-tls-key <file>", "its private key", "API_TLS_KEY"))
    .addOption(
      setting(
        "--api-allowed-host <names>",
        "host names the API answers to beyond IP addresses, localhost, this host's name and " +
          "*.blixard (comma-separated; * for any): guards against DNS rebinding",
        "API_ALLOWED_HOST",
      ),
    )
    .addOption(
      settingWithDefault(
        "--no-worker",
        "a server only: no agent runs here and the node is never a worker (agents run the work)",
        "NO_WORKER",
        "a worker too",
      ),
    )
    .addOption(
      new Option(
        "--force-new-cluster",
        "UNSAFE disaster recovery after losing a quorum for good: rewrite this node's data into " +
          "a one-member cluster of itself, keeping all its state (see README Operations)",
      ),
    )
    .addOption(
      // Tests of the enforced API on plaintext nodes (--insecure) pass `enforce`.
      new Option("--api-auth <mode>", "API authorization: enforce or insecure-open (tests)")
        .choices(["enforce", "insecure-open"])
        .hideHelp(),
    )
    .addOption(
      new Option("--snapshot-every-entries <n>", "snapshot cadence (tests)")
        .argParser(parsePositiveInt)
        .hideHelp(),
    );
  addWorkerOptions(start);
  addNodeTlsOptions(start);
  start.action(async (_options: NodeStartOptions, command: Command) => {
    const config = command.getOptionValue("config") as string | undefined;
    if (config !== undefined) usage(command, () => applyConfigFile(command, config));
    const options = command.opts<NodeStartOptions>();
    if (options.dataDir === undefined) {
      command.error("error: --data-dir is required (or BLIXARD_DATA_DIR, or dataDir in --config)", {
        exitCode: 64,
        code: "blixard.usage",
      });
    }
    if (options.electionTicks !== undefined && options.electionTicks < 3) {
      command.error("error: --election-ticks must be at least 3", {
        exitCode: 64,
        code: "blixard.usage",
      });
    }
    const electionTicks = options.electionTicks ?? DEFAULT_ELECTION_TICKS;
    if (options.heartbeatTicks !== undefined && options.heartbeatTicks >= electionTicks) {
      command.error(
        `error: --heartbeat-ticks (${options.heartbeatTicks}) must be fewer than ` +
          `--election-ticks (${electionTicks})`,
        { exitCode: 64, code: "blixard.usage" },
      );
    }
    await runNode({ ...options, dataDir: options.dataDir }, command);
  });
}

/**
 * The node's stack (`node/compose.ts`: Fastify, raft, the orchestrator; a few hundred modules),
 * loaded when the node starts, not at the top, so that the client commands start fast. Compiled,
 * it is loaded with `require`, which Node 20.19+ allows for ES modules without top-level await:
 * it reads and compiles them synchronously, about 100 ms sooner than `import()`, whose loader
 * reads each file through a promise, on this machine kind (a quarter of a start's wait before it
 * listened). The same modules run either way; `import()` where Node cannot require them
 * (`--no-experimental-require-module`) and for the TypeScript sources, which only the loaders of
 * tsx and vitest resolve.
 * @throws whatever loading the modules throws.
 */
async function loadCompose(): Promise<ComposeModule> {
  if (!process.features.require_module || !import.meta.url.endsWith(".js")) {
    return import("../node/compose.js");
  }
  const compose: ComposeModule = createRequire(import.meta.url)("../node/compose.js");
  return compose;
}

async function runNode(
  options: NodeStartOptions & { readonly dataDir: string },
  command: Command,
): Promise<void> {
  // Everything the node creates is its own (0600 files, 0700 directories), a data directory
  // made by an older version or by hand included.
  process.umask(0o077);
  const tightened = await tightenDataDir(options.dataDir);
  const stored = await readNodeConfig(options.dataDir);
  if (stored === undefined && (await hasRaftLog(options.dataDir))) {
    // Without node.json we cannot tell which cluster and node this log belongs to; adopting it
    // under new flags could make one node vote twice or join a log to the wrong cluster.
    command.error(
      `error: ${join(options.dataDir, "raft")} holds a raft log but ${join(options.dataDir, "node.json")} ` +
        "is missing: restore node.json from a backup, or move the directory away to start afresh",
      { exitCode: 64, code: "blixard.usage" },
    );
  }
  const { config, isNew } = usage(command, () =>
    resolveNodeConfig(stored, {
      dataDir: options.dataDir,
      ...(options.id === undefined ? {} : { id: options.id }),
      ...(options.clusterId === undefined ? {} : { clusterId: options.clusterId }),
      ...(options.peerListen === undefined ? {} : { peerListen: options.peerListen }),
      ...(options.apiListen === undefined ? {} : { apiListen: options.apiListen }),
      ...(options.initialMembers === undefined ? {} : { initialMembers: options.initialMembers }),
      ...(options.join === undefined ? {} : { join: options.join.map((url) => new URL(url).href) }),
    }),
  );
  const logger = new JsonLogger(options.logLevel, { nodeId: config.id });
  const tls = usage(command, () => resolveNodeTls(options, config, options.dataDir));
  if (tls === undefined) {
    logger.warn(
      "INSECURE: started with --insecure: peers are not authenticated and the API is plain " +
        "HTTP without TLS; anyone who reaches these ports controls the cluster. Never use it " +
        "outside a test machine",
      { peerListen: config.peerListen, apiListen: config.apiListen },
    );
  }
  if (tightened > 0) {
    logger.warn("tightened the data directory's modes to 0700 (directories) and 0600 (files)", {
      dataDir: options.dataDir,
      changed: tightened,
    });
  }
  if (isNew) {
    if (options.forceNewCluster === true) {
      command.error(
        "error: --force-new-cluster recovers an existing node: give the --data-dir of a survivor",
        { exitCode: 64, code: "blixard.usage" },
      );
    }
    await writeNodeConfig(options.dataDir, config);
    logger.info("node config written", { dataDir: options.dataDir });
  }
  if (options.forceNewCluster === true) {
    const { forceNewCluster } = await import("../node/force-new-cluster.js");
    const forced = await usageAsync(command, () =>
      forceNewCluster(options.dataDir, config.id, {
        log: logger,
        apiScheme: tls === undefined ? "http:" : "https:",
      }),
    );
    if (forced !== undefined) {
      logger.warn("FORCE-NEW-CLUSTER: done; starting as the only member", { ...forced });
    }
  }
  // Signals are taken from here on: one that arrives while the node starts (a supervisor's stop,
  // Ctrl-C) stops it as soon as it has started, gracefully, instead of killing it mid-start.
  // A second one while it is still starting (a join can wait for its cluster) exits at once.
  let running: RunningNode | undefined;
  let stopRequested = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info("signal received", { signal });
    if (running !== undefined) {
      void running.stop();
    } else if (stopRequested) {
      logger.warn("second signal while starting: exiting now", { signal });
      process.exit(signal === "SIGINT" ? 130 : 143);
    } else {
      stopRequested = true;
      logger.info("stopping once the node has started; signal again to exit now");
    }
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const start = async (): Promise<RunningNode> => {
    // From the config file `"worker": false` arrives as the string "false".
    const serverOnly = options.worker === false || (options.worker as unknown) === "false";
    const worker = serverOnly
      ? undefined
      : await usageAsync(command, () => resolveWorker(options, options.dataDir, logger));
    const { startNode } = await loadCompose();
    return startNode(config, {
      dataDir: options.dataDir,
      logger,
      // `--no-worker`: the host is not probed; nothing runs here.
      ...(worker === undefined
        ? { worker: false }
        : { host: worker.host, workloads: worker.workloads }),
      ...(options.workerDeadAfterMs === undefined
        ? {}
        : { workerDeadAfterMs: options.workerDeadAfterMs }),
      ...(tls === undefined ? {} : { tls }),
      ...(worker === undefined ? {} : { vm: worker.vm }),
      tickIntervalMs: options.tickMs ?? DEFAULT_TICK_MS,
      electionTicks: options.electionTicks ?? DEFAULT_ELECTION_TICKS,
      heartbeatTicks:
        options.heartbeatTicks ??
        defaultHeartbeatTicks(options.electionTicks ?? DEFAULT_ELECTION_TICKS),
      ...(options.snapshotEveryEntries === undefined
        ? {}
        : { snapshotEveryEntries: options.snapshotEveryEntries }),
      // With TLS every request is authenticated and authorized; only --insecure opens the API.
      authMode: options.apiAuth ?? (tls === undefined ? "insecure-open" : "enforce"),
      ...(options.auditLogMaxBytes === undefined
        ? {}
        : { auditLogMaxBytes: options.auditLogMaxBytes }),
      ...(options.apiMaxConnections === undefined
        ? {}
        : { apiMaxConnections: options.apiMaxConnections }),
      ...(options.apiAllowedHost === undefined
        ? {}
        : {
            apiAllowedHosts: options.apiAllowedHost
              .split(",")
              .map((h) => h.trim())
              .filter(Boolean),
          }),
    });
  };
  try {
    running = await start();
  } catch (error) {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    throw error;
  }
  if (stopRequested) void running.stop();
  const unwatchParent = stopWhenParentExits(() => onSignal("SIGHUP"));
  const failure = await running.stopped;
  process.off("SIGTERM", onSignal);
  process.off("SIGINT", onSignal);
  unwatchParent();
  // A deliberate stop with its own exit code (removed from the cluster) is not a failure.
  if (failure instanceof ExitStatus) {
    setTimeout(() => process.exit(failure.exitCode), FATAL_EXIT_GRACE_MS).unref();
    throw failure;
  }
  if (failure !== undefined) {
    // A fatal error: the node has closed its WAL and transport. Exit non-zero so a supervisor
    // (systemd, `blixard dev`) restarts it, and never hang on a handle that failed to close.
    const exitCode = isBlixardError(failure) ? ERROR_CODES[failure.code].exitCode : 70;
    logger.error("node exiting after a fatal error", { error: failure.message, exitCode });
    setTimeout(() => process.exit(exitCode), FATAL_EXIT_GRACE_MS).unref();
    throw isBlixardError(failure)
      ? failure
      : new InternalError(`fatal error: ${failure.message}`, { cause: failure });
  }
  // Everything is closed; should a stray handle linger, do not hang the shell.
  setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
}
