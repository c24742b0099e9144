/**
 * The composition root of a real node: the write-ahead log on the real disk, the TCP peer
 * transport, the node's composition (`api/node-composition.ts`: the cluster state machine under
 * sessions, the runtime, the lessor), the orchestrator's agent and the HTTP API, on the system
 * clock and an OS-seeded random source. Everything else in Blixard is given its ports; this file
 * is where they become real.
 */
import { hostname } from "node:os";
import { relayToLeader } from "../../api/agents/relay-to-leader.js";
import type { VmSettings } from "./vm-settings.js";
import { join } from "node:path";
import { ApiMetrics, type PeerTraffic } from "../../api/metrics.js";
import { RaftKvService } from "../../api/raft-service.js";
import { ApiServer } from "../../api/server.js";
import { RaftAclService } from "../../api/acl-service.js";
import { AuditLog } from "../../api/audit/audit-log.js";
import type { AuthMode } from "../../api/auth/authenticator.js";
import { NONE } from "../../raft/types.js";
import { UnavailableError, isBlixardError } from "../../common/errors.js";
import { SeededRandom } from "../../common/random.js";
import type { RaftNode } from "../../node/raft-node.js";
import { RAFT_DEFAULTS } from "../../raft/config.js";
import { SystemClock, installNativeCrc32, randomSeed } from "../../platform/index.js";
import { alignedDelayMs } from "../../common/clock.js";
import type { DetectedHost } from "../../orchestrator/host/index.js";
import { composeNode, type NodeResult } from "../../api/node-composition.js";
import { clusterSnapshotService } from "./cluster-snapshot.js";
import { createOrchestrator, type WorkloadSettings } from "./orchestrator-wiring.js";
import { FAIL_STORAGE_ENV, withInjectedStorageFailure } from "./fault-injection.js";
import { NodeFileSystem } from "../../storage/node-fs.js";
import { WalLogStore } from "../../storage/wal-log-store.js";
import { duplexLimitsForTimings, silenceLimitForElectionTimeout } from "../../transport/limits.js";
import { TcpTransport } from "../../transport/tcp-transport.js";
import { PROTOCOL_VERSION } from "../../transport/codec.js";
import { reportWhenReplayed, StartupPhases } from "./startup-phases.js";
import type { JsonLogger } from "../log.js";
import { formatHostPort } from "../options.js";
import { packageVersion } from "../version.js";
import { keepAliveHttpsAgent } from "../../security/https-pool.js";
import { nodeIdentityName } from "../../security/names.js";
import { RemovedFromClusterExit } from "../exit-status.js";
import { PersistentMemberDirectory, withScheme } from "./member-store.js";
import { MembershipWiring, confStateIds, learnMembers, requestMembership } from "./membership.js";
import type { NodeConfig } from "./node-config.js";
import { ProtocolGate } from "../../node/protocol-gate.js";
import { ProtocolPublisher } from "../../node/protocol-publisher.js";
import { checkNotDowngraded, nodeProtocolVersion, TEST_PROTOCOL_ENV } from "./protocol-switch.js";

/**
 * How often a leader checks whether a protocol entry is due (`node/protocol-publisher.ts`). A
 * second: the gate opens at most that long after the last member upgraded, and an idle node
 * wakes once more a second for it, not four times.
 */
const PROTOCOL_CHECK_INTERVAL_MS = 1000;

/** The runtime's default tick, for the transport's silence limit. */
const DEFAULT_TICK_INTERVAL_MS = 100;

/** The raft log's directory inside the data directory. */
export const RAFT_DIR = "raft";

/** A running node. */
export interface RunningNode {
  readonly config: NodeConfig;
  /** The API's base URL. */
  readonly apiUrl: URL;
  readonly node: RaftNode<NodeResult>;
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
  /** This host as a worker: capacity and features (detected, then overridden); not with `worker: false`. */
  readonly host?: DetectedHost;
  /** Mark a silent worker offline after this long (default 10 s). */
  readonly workerDeadAfterMs?: number;
  /** False (`--no-worker`): a server only, with no agent and no worker record. Default true. */
  readonly worker?: boolean;
  /** Whether and how this node runs raw tasks and process VMs (default: it does not). */
  readonly workloads?: WorkloadSettings;
  /** qemu VM settings (image directory, ready timeout); default: anywhere, no readiness wait. */
  readonly vm?: VmSettings;
  /** Election timeout in ticks, randomized in [n, 2n) (default: the core's, 10). */
  readonly electionTicks?: number;
  /** Ticks between a leader's heartbeats (default: `defaultHeartbeatTicks` of the election ticks). */
  readonly heartbeatTicks?: number;
  /** Take a snapshot every this many applied entries (default: the runtime's, 10 000). */
  readonly snapshotEveryEntries?: number;
  /**
   * TLS: mutual TLS between peers with the node's certificate, HTTPS for the API, and the
   * node's own API clients presenting it. Plaintext everywhere when absent (`--insecure`).
   */
  readonly tls?: NodeTls;
  /**
   * `enforce` (default): every API request needs a token or a certificate its policies allow.
   * `insecure-open`: every request is the anonymous management identity (logged as a warning).
   */
  readonly authMode?: AuthMode;
  /** Rotate `<dataDir>/audit.log` at this size (default 64 MiB). */
  readonly auditLogMaxBytes?: number;
  /** Most open API connections (default 1024). */
  readonly apiMaxConnections?: number;
  /** Extra Host names the API answers to (see `api/host-check.ts`). */
  readonly apiAllowedHosts?: readonly string[];
}

/** A node's TLS material, PEM (see `node-tls.ts`). */
export interface NodeTls {
  /** The cluster's CA certificate. */
  readonly ca: string;
  /** The node's certificate (names `node-<id>.<cluster>.blixard`) and key. */
  readonly cert: string;
  readonly key: string;
  /** The API's certificate and key (default: the node's). */
  readonly apiCert: string;
  readonly apiKey: string;
}

/** The audit log's file inside the data directory. */
export const AUDIT_LOG_FILE = "audit.log";

/**
 * Opens the data directory, starts listening for peers and clients and starts the node. A node
 * configured to join (`config.join`) that is in no configuration yet first learns the members
 * from the cluster, and once running asks it to add it as a learner (see `membership.ts`).
 * @throws UnavailableError if the data directory is in use, a port is taken, or joining failed.
 * @throws ConflictError if another member of the cluster to join has this node's id.
 * @throws StorageCorruptError if the log is damaged.
 */
export async function startNode(
  config: NodeConfig,
  options: StartNodeOptions,
): Promise<RunningNode> {
  const phases = new StartupPhases();
  const log = options.logger;
  const clock = new SystemClock();
  const seed = randomSeed();
  // Loading the log and the snapshot checksums every byte of them: natively, when Node can.
  installNativeCrc32();
  log.info("node starting", {
    version: packageVersion(),
    clusterId: config.clusterId,
    dataDir: options.dataDir,
    seed,
    initialMembers: config.initialMembers.map((m) => m.id),
  });
  const random = new SeededRandom(seed);
  const protocolVersion = nodeProtocolVersion(process.env[TEST_PROTOCOL_ENV]);
  if (protocolVersion < PROTOCOL_VERSION) {
    log.warn(
      `TEST SWITCH ${TEST_PROTOCOL_ENV}: this node behaves as the release of peer protocol ${protocolVersion} (never in production)`,
      { protocolVersion },
    );
  }
  const voters = config.initialMembers.map((m) => m.id);
  const cleanups: (() => Promise<void>)[] = [];
  const undo = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };

  const metrics = new ApiMetrics(config.id);
  try {
    const walStore = await WalLogStore.open(join(options.dataDir, RAFT_DIR), {
      fs: new NodeFileSystem(),
      syncObserver: { now: () => clock.now(), observe: (ms) => metrics.observeFsync(ms) },
      // Said once per stall: the log retries on its own, and the node refuses writes meanwhile.
      onStorageFull: (error) =>
        error === undefined
          ? log.info("storage writable again: the disk has room; resuming")
          : log.error("storage full: writes wait for space", {
              code: error.code,
              error: error.message,
            }),
      onSnapshotReadFailed: (error) =>
        log.error("could not read the newest snapshot back to send it to a follower; retrying", {
          error: error.message,
        }),
      confState: { voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    });
    cleanups.push(() => walStore.close());
    const logStore = withInjectedStorageFailure(walStore, process.env[FAIL_STORAGE_ENV]);
    phases.mark("storageOpen");
    // What the node replays on its own, before it hears from any peer.
    const initialCommit = walStore.initialState().hardState.commit;
    log.info("storage opened", { ...walStore.recovery });

    // Members' addresses: members.json (kept up to date by membership changes), else the
    // initial members; this node's own addresses are its listen addresses.
    const tls = options.tls;
    const apiScheme = tls === undefined ? "http:" : "https:";
    const clientTls = tls === undefined ? {} : { ca: tls.ca, cert: tls.cert, key: tls.key };
    const directory = await PersistentMemberDirectory.load(
      options.dataDir,
      config.initialMembers,
      log,
      apiScheme,
    );
    cleanups.push(() => directory.flush());
    checkNotDowngraded(directory.clusterProtocolVersion, protocolVersion);
    const self = {
      raftAddress: formatHostPort(config.peerListen),
      apiAddress: new URL(`${apiScheme}//${formatHostPort(config.apiListen)}`).href,
    };
    const joinEndpoints = (config.join ?? []).map((url) => withScheme(url, apiScheme));
    if (directory.get(config.id) === undefined) directory.set(config.id, self);
    const initialConfState = logStore.initialState().confState;
    const configured = confStateIds(initialConfState);
    if (configured.length > 0 && !configured.includes(config.id)) {
      // Its log holds its own removal: a removed member never serves again (as etcd's).
      log.warn("this node was removed from the cluster; not starting", { members: configured });
      throw new RemovedFromClusterExit("its log holds its removal");
    }
    const joining =
      config.join !== undefined &&
      [initialConfState.voters, initialConfState.learners, initialConfState.votersOutgoing].every(
        (ids) => ids.length === 0,
      );
    if (joining) {
      await learnMembers(joinEndpoints, directory, config.id, clientTls);
      log.info("learned the members of the cluster to join", {
        members: directory.entries().map(([id]) => id),
      });
    }

    const tickIntervalMs = options.tickIntervalMs ?? DEFAULT_TICK_INTERVAL_MS;
    const electionTimeoutMs =
      (options.electionTicks ?? RAFT_DEFAULTS.electionTicks) * tickIntervalMs;
    const transport = new TcpTransport({
      nodeId: config.id,
      clusterId: config.clusterId,
      listen: config.peerListen,
      clock,
      random,
      logger: log.child({ component: "transport" }),
      protocol: { maxVersion: protocolVersion, softwareVersion: packageVersion() },
      ...(tls === undefined
        ? {}
        : {
            tls: {
              ca: tls.ca,
              cert: tls.cert,
              key: tls.key,
              // A dialled peer must present its own node certificate, whatever its address.
              peerServerName: (peerId: number) => nodeIdentityName(config.clusterId, peerId),
            },
          }),
      // A silent peer link is reset after twice the (shortest) election timeout; heartbeats
      // and answers take the reverse path too when answers are late (duplex-policy.ts).
      limits: {
        silenceLimitMs: silenceLimitForElectionTimeout(electionTimeoutMs),
        ...duplexLimitsForTimings(
          (options.heartbeatTicks ?? RAFT_DEFAULTS.heartbeatTicks) * tickIntervalMs,
          electionTimeoutMs,
        ),
      },
    });
    // A removal or a fatal error can be reported before the stop path at the end exists: the
    // node replays committed entries (its own removal among them) while it starts, and a peer
    // may refuse it early. The first report is kept and acted on once that path is wired. (One
    // dropped here left a restarted removed member running forever: outside the configuration
    // it never campaigns, so it never dials a peer that would refuse it again.)
    let early: { readonly removed: string } | { readonly fatal: Error } | undefined;
    let onRemoved: (how: string) => void = (how) => (early ??= { removed: how });
    let onFatal: (error: Error) => void = (error) => (early ??= { fatal: error });
    // A member answers "removed" only for a removal it applied (committed), so one is believed.
    transport.onRemovedFromCluster((peer) => onRemoved(`node ${peer} refused it as removed`));
    const membership = new MembershipWiring({
      selfId: config.id,
      directory,
      transport,
      log: log.child({ component: "membership" }),
      initialConfState,
      onRemoved: () => setImmediate(() => onRemoved("it applied its own removal")),
      ...(config.join === undefined ? {} : { seedEndpoints: joinEndpoints }),
      clientTls,
    });
    membership.seedTransport();
    // The cluster moved on before this start: peers of an older release are refused from the first hello.
    transport.requireProtocolVersion(Math.min(directory.clusterProtocolVersion, protocolVersion));
    const protocolGate = new ProtocolGate({
      nodeVersion: protocolVersion,
      clusterVersion: directory.clusterProtocolVersion,
      onClusterVersion: (version, index) => {
        log.info("cluster protocol version raised; older releases are refused from now on", {
          version,
          index,
        });
        directory.setClusterProtocolVersion(version);
        transport.requireProtocolVersion(Math.min(version, protocolVersion));
      },
    });
    await listening(() => transport.start(), "peer", formatHostPort(config.peerListen));
    cleanups.push(() => transport.close());
    log.info("transport listening", { peerAddress: formatHostPort(transport.address) });
    phases.mark("transportStart");

    // The state machine stack, the runtime and the lessor: what every node runs, simulated ones
    // included (see api/node-composition.ts); here on the real platform.
    // The node's role changes call the protocol publisher, which needs the node: set below.
    const late: { publisher?: ProtocolPublisher } = {};
    const { machine, feed, applied, node, commands, coordination } = composeNode({
      id: config.id,
      platform: {
        clock,
        random,
        logStore,
        transport: membership.gate(transport),
        defer: (callback) => setImmediate(callback),
        raftLogger: log.child({ component: "raft" }),
        lessorLogger: log.child({ component: "lessor" }),
      },
      timing: {
        ...(options.tickIntervalMs === undefined ? {} : { tickIntervalMs: options.tickIntervalMs }),
        ...(options.electionTicks === undefined ? {} : { electionTicks: options.electionTicks }),
        ...(options.heartbeatTicks === undefined ? {} : { heartbeatTicks: options.heartbeatTicks }),
        ...(options.snapshotEveryEntries === undefined
          ? {}
          : { snapshotEveryEntries: options.snapshotEveryEntries }),
      },
      directory,
      metrics,
      onFatal: (error) => onFatal(error),
      protocolGate,
      onConfChange: (change, confState) => membership.onConfChange(change, confState),
      onRaftStateChange: ({ role, term, leader }) => {
        log.info("raft state changed", { role, term, leader: leader === NONE ? null : leader });
        metrics.observeLeader(leader);
        // A new leader publishes the cluster's protocol version after this turn instead of at
        // the next periodic check (up to a second later): until then a fresh cluster refuses
        // batch commands as if an upgrade were under way.
        if (role === "leader") setImmediate(() => late.publisher?.check());
      },
    });
    phases.mark("snapshotRestore");
    metrics.setPeerTrafficSource(() => peerTraffic(transport));
    // Every log line of this node carries the raft term and role it was written in.
    log.setContext(() => {
      try {
        const status = node.status();
        return { term: status.term, role: status.role };
      } catch {
        return {};
      }
    });
    const publisher = new ProtocolPublisher({
      gate: protocolGate,
      node,
      peerVersion: (id) => transport.peerProtocols().get(id)?.maxProtocolVersion,
      logger: log.child({ component: "protocol" }),
    });
    late.publisher = publisher;
    const service = new RaftKvService({
      node,
      commands,
      kv: machine,
      directory,
      memberRelease: (id) => {
        if (id === config.id) return { protocolVersion, softwareVersion: packageVersion() };
        const peer = transport.peerProtocols().get(id);
        return peer === undefined
          ? undefined
          : {
              protocolVersion: peer.maxProtocolVersion,
              ...(peer.softwareVersion === undefined
                ? {}
                : { softwareVersion: peer.softwareVersion }),
            };
      },
    });
    // Forwarding (and relaying heartbeats) presents the node's certificate: the leader sees a
    // member forwarded.
    const forwardHttpsAgent =
      tls === undefined
        ? undefined
        : keepAliveHttpsAgent({ ca: tls.ca, cert: tls.cert, key: tls.key });
    const orchestrator = createOrchestrator({
      relayHeartbeats: relayToLeader({
        leaderUrl: () => commands.leaderApiUrl(),
        ...(forwardHttpsAgent === undefined ? {} : { httpsAgent: forwardHttpsAgent }),
      }),
      node,
      commands,
      machine,
      feed,
      onApplied: (listener) => applied.subscribe(listener),
      clock,
      directory,
      dataDir: options.dataDir,
      ...(options.host === undefined ? {} : { host: options.host }),
      workloads: options.workloads ?? { rawExec: false },
      worker: options.worker ?? true,
      log,
      ...(options.workerDeadAfterMs === undefined
        ? {}
        : { workerDeadAfterMs: options.workerDeadAfterMs }),
      ...(options.vm === undefined
        ? {}
        : {
            vm: {
              ...options.vm,
              migrationHost: migrationHost(config.peerListen.host),
              // Migrations go over mutual TLS with the node's own certificate.
              ...(tls === undefined
                ? {}
                : {
                    migrationTls: {
                      ca: tls.ca,
                      cert: tls.cert,
                      key: tls.key,
                      clusterId: config.clusterId,
                    },
                  }),
            },
          }),
    });
    const acl = new RaftAclService({ commands, acl: machine.acl, now: () => Date.now() });
    cleanups.push(async () => coordination.close());
    const authMode = options.authMode ?? "enforce";
    if (authMode === "insecure-open") {
      log.warn("the API is open: every request may do everything (insecure mode)", {});
    }
    const audit = await AuditLog.open(join(options.dataDir, AUDIT_LOG_FILE), {
      ...(options.auditLogMaxBytes === undefined ? {} : { maxBytes: options.auditLogMaxBytes }),
    });
    cleanups.push(() => audit.close());
    const server = new ApiServer({
      service,
      orchestrator: orchestrator.service,
      agents: orchestrator.agents,
      acl,
      coordination: coordination.service,
      operator: clusterSnapshotService({
        clusterId: config.clusterId,
        node,
        machine,
        logStore,
        members: () => service.members(),
      }),
      audit,
      auth: { mode: authMode, acl: machine.acl, clusterId: config.clusterId },
      events: { feed },
      metrics,
      version: packageVersion(),
      ...(tls === undefined
        ? {}
        : {
            https: { cert: tls.apiCert, key: tls.apiKey, ca: tls.ca },
            ...(forwardHttpsAgent === undefined ? {} : { forwardHttpsAgent }),
          }),
      ...(options.apiMaxConnections === undefined
        ? {}
        : { maxConnections: options.apiMaxConnections }),
      ...(options.apiAllowedHosts === undefined ? {} : { allowedHosts: options.apiAllowedHosts }),
    });
    const apiUrl = await listening(
      () => server.listen(config.apiListen),
      "API",
      formatHostPort(config.apiListen),
    );
    cleanups.push(() => server.close());
    node.start();
    cleanups.push(() => node.stop());
    phases.mark("servicesStart");
    const stopReplayReport = reportWhenReplayed({
      phases,
      commitAtOpen: initialCommit,
      snapshotIndex: walStore.recovery.snapshotIndex,
      appliedIndex: () => node.status().applied,
      subscribe: (listener) => applied.subscribe(listener),
      log: (message, fields) => log.info(message, fields),
    });
    cleanups.push(async () => stopReplayReport());
    // On the grid of the node's other periodic checks (alignedDelayMs): no wake-up of its own.
    let protocolTimer: NodeJS.Timeout | undefined;
    const scheduleProtocolCheck = (): void => {
      protocolTimer = setTimeout(
        () => {
          publisher.check();
          scheduleProtocolCheck();
        },
        alignedDelayMs(clock.now(), PROTOCOL_CHECK_INTERVAL_MS),
      );
      protocolTimer.unref();
    };
    scheduleProtocolCheck();
    cleanups.push(async () => clearTimeout(protocolTimer));
    coordination.start();
    log.info("node started", { apiUrl: apiUrl.href });
    await orchestrator.start();
    cleanups.push(() => orchestrator.close());
    if (joining) {
      log.info("asking the cluster to add this node as a learner", { join: config.join });
      const joined = await requestMembership(
        joinEndpoints,
        { id: config.id, ...self },
        log,
        undefined,
        clientTls,
      );
      log.info("joined the cluster as a learner", joined === undefined ? {} : { config: joined });
    }

    let resolveStopped: (result: Error | undefined) => void = () => undefined;
    const stopped = new Promise<Error | undefined>((resolve) => (resolveStopped = resolve));
    let stopping: Promise<void> | undefined;
    const stop = (reason?: Error): Promise<void> => {
      stopping ??= (async () => {
        clearTimeout(protocolTimer);
        membership.close();
        coordination.close();
        await orchestrator
          .close()
          .catch((e: unknown) => log.warn("orchestrator close failed", errorFields(e)));
        log.info("node stopping", reason === undefined ? {} : { reason: reason.message });
        await server.close().catch((e: unknown) => log.warn("API close failed", errorFields(e)));
        await node.stop().catch((e: unknown) => log.warn("node stop failed", errorFields(e)));
        await audit.close();
        await directory.flush();
        log.info("node stopped");
        resolveStopped(reason);
      })();
      return stopping;
    };
    onFatal = (error) => {
      log.error("node failed", errorFields(error));
      void stop(error);
    };
    let removed = false;
    onRemoved = (how) => {
      if (removed) return;
      removed = true;
      log.warn("this node was removed from the cluster; stopping", { how });
      void stop(new RemovedFromClusterExit(how));
    };
    if (early !== undefined) {
      if ("fatal" in early) onFatal(early.fatal);
      else onRemoved(early.removed);
    }
    return { config, apiUrl, node, stop: () => stop(), stopped };
  } catch (error) {
    await undo();
    throw error;
  }
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

/** The transport's per-peer counters in the shape the metrics want. */
function peerTraffic(transport: TcpTransport): Map<number, PeerTraffic> {
  const traffic = new Map<number, PeerTraffic>();
  const received = transport.receivedStats();
  const ids = new Set([...transport.stats().keys(), ...received.keys()]);
  for (const id of ids) {
    const out = transport.stats().get(id);
    const into = received.get(id);
    traffic.set(id, {
      sent: out?.messagesSent ?? 0,
      dropped: out?.messagesDropped ?? 0,
      snapshotsSent: out?.snapshotsSent ?? 0,
      received: into?.messagesReceived ?? 0,
      snapshotsReceived: into?.snapshotsReceived ?? 0,
      sentBack: out?.reverse.messagesSent ?? 0,
      receivedBack: out?.messagesReceivedBack ?? 0,
      sentByDatagram: out?.datagram.messagesSent ?? 0,
      receivedByDatagram: out?.messagesReceivedByDatagram ?? 0,
    });
  }
  return traffic;
}

/**
 * Where VMs migrating to this node listen: its peer listen host (other nodes reach it there), or
 * this machine's name when that host is a wildcard. Throws nothing.
 */
function migrationHost(peerHost: string): string {
  return peerHost === "0.0.0.0" || peerHost === "::" || peerHost === "" ? hostname() : peerHost;
}
