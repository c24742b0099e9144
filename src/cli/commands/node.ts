/**
 * `blixard node start`: runs one node in the foreground until SIGTERM or SIGINT, then shuts down
 * gracefully (API, node, transport, WAL) and exits 0.
 */
import { Command, Option } from "commander";
import { InvalidArgumentError } from "../../common/errors.js";
import { JsonLogger, type CliLogLevel } from "../log.js";
import { parseInitialMembers, type InitialMember } from "../node/members.js";
import { readNodeConfig, resolveNodeConfig, writeNodeConfig } from "../node/node-config.js";
import { parseHostPort, parseLogLevel, parsePositiveInt, type HostPort } from "../options.js";

interface NodeStartOptions {
  readonly dataDir: string;
  readonly id?: number;
  readonly clusterId?: string;
  readonly peerListen?: HostPort;
  readonly apiListen?: HostPort;
  readonly initialMembers?: InitialMember[];
  readonly join?: string;
  readonly logLevel: CliLogLevel;
}

/** Registers `node start` on `program`. */
export function registerNodeCommands(program: Command): void {
  const node = program.command("node").description("run a Blixard node");
  node
    .command("start")
    .description(
      "start a node in the foreground (SIGTERM or Ctrl-C stops it gracefully).\n\n" +
        "First start: give --id, --data-dir, --peer-listen, --api-listen and, to bootstrap a\n" +
        "multi-node cluster, the same --initial-members on every node. Without\n" +
        "--initial-members the node bootstraps a single-node cluster of itself.\n" +
        "The settings are stored in <data-dir>/node.json: a restart needs only --data-dir.\n" +
        "Joining a running cluster (--join) is not implemented yet; add a learner with the\n" +
        "API (POST /v1/cluster/members) and start it with the full member list instead.",
    )
    .requiredOption("--data-dir <dir>", "data directory (raft log, snapshots, node.json)")
    .option("--id <n>", "node id, a positive integer (first start)", parsePositiveInt)
    .option("--cluster-id <name>", "cluster id every member shares (first start; default blixard)")
    .option(
      "--peer-listen <host:port>",
      "peer transport listen address (first start)",
      parseHostPort,
    )
    .option("--api-listen <host:port>", "HTTP API listen address (first start)", parseHostPort)
    .option(
      "--initial-members <list>",
      "bootstrap members: ID=PEER_HOST:PORT@API_HOST:PORT,... (first start)",
      parseInitialMembers,
    )
    .addOption(
      new Option("--join <url>", "join a running cluster (not implemented yet)").hideHelp(),
    )
    .option("--log-level <level>", "debug, info, warn, error or silent", parseLogLevel, "info")
    .action(async (options: NodeStartOptions, command: Command) => {
      if (options.join !== undefined) {
        command.error("error: --join is not implemented yet; see `blixard node start --help`", {
          exitCode: 64,
          code: "blixard.notImplemented",
        });
      }
      await runNode(options, command);
    });
}

async function runNode(options: NodeStartOptions, command: Command): Promise<void> {
  const stored = await readNodeConfig(options.dataDir);
  const { config, isNew } = usage(command, () =>
    resolveNodeConfig(stored, {
      dataDir: options.dataDir,
      ...(options.id === undefined ? {} : { id: options.id }),
      ...(options.clusterId === undefined ? {} : { clusterId: options.clusterId }),
      ...(options.peerListen === undefined ? {} : { peerListen: options.peerListen }),
      ...(options.apiListen === undefined ? {} : { apiListen: options.apiListen }),
      ...(options.initialMembers === undefined ? {} : { initialMembers: options.initialMembers }),
    }),
  );
  const logger = new JsonLogger(options.logLevel, { nodeId: config.id });
  if (isNew) {
    await writeNodeConfig(options.dataDir, config);
    logger.info("node config written", { dataDir: options.dataDir });
  }
  // Loaded here, not at the top: the node's stack (Fastify, prom-client, raft) is heavy, and the
  // client commands should start fast.
  const { startNode } = await import("../node/compose.js");
  const running = await startNode(config, { dataDir: options.dataDir, logger });
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info("signal received", { signal });
    void running.stop();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const failure = await running.stopped;
  process.off("SIGTERM", onSignal);
  process.off("SIGINT", onSignal);
  if (failure !== undefined) throw failure;
  // Everything is closed; should a stray handle linger, do not hang the shell.
  setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
}

/** Runs `fn`; an InvalidArgumentError it throws is a usage error (exit 64), as commander's are. */
function usage<T>(command: Command, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    return command.error(`error: ${error.message}`, { exitCode: 64, code: "blixard.usage" });
  }
}
