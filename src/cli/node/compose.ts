/**
 * The composition root of a real node: the write-ahead log on the real disk, the TCP peer
 * transport, the runtime with the sessioned kv state machine, and the HTTP API, on the system
 * clock and an OS-seeded random source. Everything else in Blixard is given its ports; this file
 * is where they become real.
 */
import { join } from "node:path";
import { ApiMetrics } from "../../api/metrics.js";
import { InMemoryMemberDirectory } from "../../api/member-directory.js";
import { RaftKvService, type KvNodeResult } from "../../api/raft-service.js";
import { ApiServer } from "../../api/server.js";
import { UnavailableError, isBlixardError } from "../../common/errors.js";
import { SeededRandom } from "../../common/random.js";
import { RaftNode } from "../../node/raft-node.js";
import { SystemClock, randomSeed } from "../../platform/index.js";
import { KvStateMachine } from "../../statemachine/kv/kv-state-machine.js";
import { NodeFileSystem } from "../../storage/node-fs.js";
import { WalLogStore } from "../../storage/wal-log-store.js";
import { TcpTransport } from "../../transport/tcp-transport.js";
import type { JsonLogger } from "../log.js";
import { formatHostPort } from "../options.js";
import { packageVersion } from "../version.js";
import type { NodeConfig } from "./node-config.js";

/** The raft log's directory inside the data directory. */
export const RAFT_DIR = "raft";

/** A running node. */
export interface RunningNode {
  readonly config: NodeConfig;
  /** The API's base URL. */
  readonly apiUrl: URL;
  readonly node: RaftNode<KvNodeResult>;
  /**
   * Stops gracefully: API server, then node (which closes the transport and the WAL). Idempotent:
   * every call returns the same promise.
   */
  stop(): Promise<void>;
  /** Settles when the node has stopped: `undefined` after {@link stop}, the error after a fatal one. */
  readonly stopped: Promise<Error | undefined>;
}

/** Options of {@link startNode} beyond the node's configuration. */
export interface StartNodeOptions {
  readonly dataDir: string;
  readonly logger: JsonLogger;
  /** Raft tick interval (default: the runtime's, 100 ms). */
  readonly tickIntervalMs?: number;
}

/**
 * Opens the data directory, starts listening for peers and clients and starts the node.
 * @throws UnavailableError if the data directory is in use or a port is taken.
 * @throws StorageCorruptError if the log is damaged.
 */
export async function startNode(
  config: NodeConfig,
  options: StartNodeOptions,
): Promise<RunningNode> {
  const log = options.logger;
  const clock = new SystemClock();
  const seed = randomSeed();
  log.info("node starting", {
    version: packageVersion(),
    clusterId: config.clusterId,
    dataDir: options.dataDir,
    seed,
    initialMembers: config.initialMembers.map((m) => m.id),
  });
  const random = new SeededRandom(seed);
  const voters = config.initialMembers.map((m) => m.id);
  const cleanups: (() => Promise<void>)[] = [];
  const undo = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };

  try {
    const logStore = await WalLogStore.open(join(options.dataDir, RAFT_DIR), {
      fs: new NodeFileSystem(),
      confState: { voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    });
    cleanups.push(() => logStore.close());
    log.info("storage opened", { ...logStore.recovery });

    const transport = new TcpTransport({
      nodeId: config.id,
      clusterId: config.clusterId,
      listen: config.peerListen,
      peers: new Map(
        config.initialMembers.filter((m) => m.id !== config.id).map((m) => [m.id, m.peerAddress]),
      ),
      clock,
      random,
      logger: log.child({ component: "transport" }),
    });
    await listening(() => transport.start(), "peer", formatHostPort(config.peerListen));
    cleanups.push(() => transport.close());
    log.info("transport listening", { peerAddress: formatHostPort(transport.address) });

    let onFatal: (error: Error) => void = () => undefined;
    const kv = new KvStateMachine();
    const node = new RaftNode<KvNodeResult>({
      id: config.id,
      logStore,
      stateMachine: kv,
      transport,
      clock,
      random,
      logger: log.child({ component: "raft" }),
      onFatal: (error) => onFatal(error),
      ...(options.tickIntervalMs === undefined ? {} : { tickIntervalMs: options.tickIntervalMs }),
    });
    const directory = new InMemoryMemberDirectory(
      config.initialMembers.map((m) => [
        m.id,
        { raftAddress: m.peerAddress, apiAddress: m.apiAddress },
      ]),
    );
    const metrics = new ApiMetrics(config.id);
    const service = new RaftKvService({ node, kv, clock, directory, metrics });
    const server = new ApiServer({ service, metrics, version: packageVersion() });
    const apiUrl = await listening(
      () => server.listen(config.apiListen),
      "API",
      formatHostPort(config.apiListen),
    );
    cleanups.push(() => server.close());
    node.start();
    log.info("node started", { apiUrl: apiUrl.href });

    const watcher = watchLeadership(node, log);
    let resolveStopped: (result: Error | undefined) => void = () => undefined;
    const stopped = new Promise<Error | undefined>((resolve) => (resolveStopped = resolve));
    let stopping: Promise<void> | undefined;
    const stop = (reason?: Error): Promise<void> => {
      stopping ??= (async () => {
        clearInterval(watcher);
        log.info("node stopping", reason === undefined ? {} : { reason: reason.message });
        await server.close().catch((e: unknown) => log.warn("API close failed", errorFields(e)));
        await node.stop().catch((e: unknown) => log.warn("node stop failed", errorFields(e)));
        log.info("node stopped");
        resolveStopped(reason);
      })();
      return stopping;
    };
    onFatal = (error) => {
      log.error("node failed", errorFields(error));
      void stop(error);
    };
    return { config, apiUrl, node, stop: () => stop(), stopped };
  } catch (error) {
    await undo();
    throw error;
  }
}

/** Logs role, term and leader changes (sampled every 250 ms). */
function watchLeadership(node: RaftNode<KvNodeResult>, log: JsonLogger): NodeJS.Timeout {
  let last = "";
  return setInterval(() => {
    const status = node.status();
    const leader = status.leader === 0 ? null : status.leader;
    const key = `${status.role}/${status.term}/${leader}`;
    if (key === last) return;
    last = key;
    log.info("raft state changed", { role: status.role, term: status.term, leader });
  }, 250);
}

function errorFields(error: unknown): Record<string, unknown> {
  return {
    error: error instanceof Error ? error.message : String(error),
    code: isBlixardError(error) ? error.code : "INTERNAL",
  };
}

async function listening<T>(start: () => Promise<T>, what: string, address: string): Promise<T> {
  try {
    return await start();
  } catch (error) {
    if (isBlixardError(error)) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new UnavailableError(
      `cannot listen for ${what} traffic on ${address}: ${code ?? (error as Error).message}`,
      { cause: error },
    );
  }
}
