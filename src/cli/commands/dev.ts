/**
 * `blixard dev`: a local cluster of real node processes with data under one directory. Waits for
 * a leader, prints the nodes and example commands, and on Ctrl-C or SIGTERM stops every node
 * (SIGTERM, then SIGKILL after a timeout). With `--agents N` it also starts N agent-only workers
 * (`blixard agent start`) against the nodes, with node certificates for the ids after theirs.
 */
import { defaultShown } from "../option-defaults.js";
import { REMOVED_EXIT_CODE } from "../exit-status.js";
import { access, mkdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Option, type Command } from "commander";
import { BlixardClient } from "../../client/index.js";
import { ConflictError, UnavailableError } from "../../common/errors.js";
import { logTail, spawnAgent, spawnNode, stopChildren, type NodeChild } from "../dev/children.js";
import { freePorts } from "../dev/ports.js";
import { formatInitialMembers, type InitialMember } from "../node/members.js";
import { withScheme } from "../node/member-store.js";
import { readNodeConfig } from "../node/node-config.js";
import { parseNonNegativeInt, parsePort, parsePositiveInt } from "../options.js";
import { formatTable } from "../table.js";
import { printJson } from "./client-options.js";
import { DEV_TLS_CLUSTER_ID, provisionDevTls, type DevClientTls, type DevTls } from "../dev/tls.js";
import { DEV_TOKEN_FILE } from "./token-lookup.js";

/** How far above its peer port each dev node's API port is, unless --api-base-port says. */
const API_PORT_OFFSET = 1000;

interface DevOptions {
  readonly nodes: number;
  readonly dataDir: string;
  readonly basePort: number;
  readonly apiBasePort?: number;
  readonly clean?: boolean;
  readonly json?: boolean;
  readonly readyTimeout: number;
  readonly stopTimeout: number;
  readonly insecure?: boolean;
  readonly agents: number;
  /** False with `--no-worker`: the servers run no work (the agents do). */
  readonly worker?: boolean;
}

/** One planned agent-only worker. */
interface DevAgent {
  readonly id: number;
  readonly dir: string;
  readonly args: string[];
}

/** One planned node: its directory, `node start` arguments and addresses. */
interface DevNode {
  readonly id: number;
  readonly dir: string;
  readonly args: string[];
  readonly member: InitialMember;
}

/** `--agents`: commander passes the previous value as a second argument; ignore it. */
function parseNonNegativeIntOption(value: string): number {
  return parseNonNegativeInt(value);
}

/** The cluster id of dev clusters. */
export const DEV_CLUSTER_ID = DEV_TLS_CLUSTER_ID;

/** Registers `dev` on `program`. */
export function registerDevCommand(program: Command): void {
  program
    .command("dev")
    .summary("run a local secure cluster of real node processes until Ctrl-C")
    .description(
      "run a local cluster of real node processes until Ctrl-C.\n" +
        "Secure like a real cluster: the first run creates a CA, node certificates (for\n" +
        "127.0.0.1 and localhost) and an admin client certificate in <data-dir>/tls/; the\n" +
        "nodes use mutual TLS and serve HTTPS, and client commands run from this directory\n" +
        "find <data-dir>/tls/ca.pem by themselves.\n" +
        "Node i listens for peers on base-port+i-1 and for clients on api-base-port+i-1; each\n" +
        "node's data and log (node.log) are in <data-dir>/node-<i>. Run it again to restart the\n" +
        "same cluster from its data; --clean starts from scratch.",
    )
    .option("--nodes <n>", "number of nodes", parsePositiveInt, 3)
    .option("--data-dir <dir>", "where the nodes keep their data", ".blixard/dev")
    .option("--base-port <port>", "first peer port (0: any free ports)", parsePort, 7001)
    .addOption(
      defaultShown(
        new Option("--api-base-port <port>", "first API port").argParser(parsePort),
        `--base-port + ${API_PORT_OFFSET}`,
      ),
    )
    .option("--clean", "delete the data directory first")
    .option("--json", "print the cluster as one JSON line instead of a table")
    .option("--ready-timeout <ms>", "how long to wait for a leader", parsePositiveInt, 30_000)
    .option("--stop-timeout <ms>", "grace period before SIGKILL on stop", parsePositiveInt, 10_000)
    .option("--insecure", "no TLS: plaintext peers and plain HTTP APIs (a warning on every start)")
    .option(
      "--agents <n>",
      "agent-only workers to start besides the nodes (ids after the nodes'; data and agent.log " +
        "in <data-dir>/agent-<id>)",
      parseNonNegativeIntOption,
      0,
    )
    .option("--no-worker", "the nodes are servers only: the agents run the work")
    .action(async (options: DevOptions) => {
      await runDev(options);
    });
}

async function runDev(options: DevOptions): Promise<void> {
  if (options.clean === true) await rm(options.dataDir, { recursive: true, force: true });
  const tls =
    options.insecure === true
      ? undefined
      : await provisionDevTls({ dataDir: options.dataDir, nodes: options.nodes + options.agents });
  const plan = (await planNodes(options)).map((node) => ({
    ...node,
    member: {
      ...node.member,
      apiAddress: withScheme(node.member.apiAddress, tls === undefined ? "http:" : "https:"),
    },
    args: [
      ...node.args,
      ...(tls === undefined ? ["--insecure"] : tls.nodeArgs(node.id)),
      ...(options.worker === false ? ["--no-worker"] : []),
    ],
  }));
  const agents = planAgents(options, plan, tls);
  const children: NodeChild[] = [];
  let stopping = false;
  let stopRequested: (signal: string) => void = () => undefined;
  const stopSignal = new Promise<string>((resolve) => (stopRequested = resolve));
  const onSignal = (signal: NodeJS.Signals): void => stopRequested(signal);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    // A dev cluster runs the README's tasks: raw exec on (node start keeps it off by default).
    process.stderr.write(
      "blixard dev: raw exec is ON (--enable-raw-exec): tasks and process VMs run as host processes on these nodes\n",
    );
    for (const node of plan) {
      await mkdir(node.dir, { recursive: true, mode: 0o700 });
      children.push(spawnNode(node.id, node.dir, [...node.args, "--enable-raw-exec"]));
    }
    for (const agent of agents) {
      await mkdir(agent.dir, { recursive: true, mode: 0o700 });
      children.push(spawnAgent(agent.id, agent.dir, [...agent.args, "--enable-raw-exec"]));
    }
    for (const child of children) {
      void child.exited.then((code) => {
        if (stopping) return;
        // A removed node stops for good (exit 20); dev never restarts a node anyway.
        const why =
          code === REMOVED_EXIT_CODE ? "was removed from the cluster and stopped" : "exited";
        const what = child.id > plan.length ? "agent" : "node";
        process.stderr.write(`${what} ${child.id} ${why} (${code}); see ${child.logPath}\n`);
      });
    }
    const leader = await Promise.race([
      waitForLeader(
        plan,
        children.slice(0, plan.length),
        options.readyTimeout,
        tls?.clientTls ?? {},
      ),
      stopSignal.then(() => undefined),
    ]);
    if (leader !== undefined) {
      const tokenPath =
        tls === undefined ? undefined : await ensureManagementToken(options.dataDir, plan, tls);
      report(options, plan, agents, children, leader, tls, tokenPath);
      await stopSignal;
    }
  } finally {
    stopping = true;
    if (options.json !== true) process.stderr.write("stopping the cluster...\n");
    await stopChildren(children, options.stopTimeout);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (options.json !== true) process.stderr.write("all nodes stopped\n");
  }
}

/**
 * The agent-only workers: ids after the nodes', each with its directory, the nodes' API URLs as
 * its servers and its node certificate from the dev CA.
 */
function planAgents(
  options: DevOptions,
  plan: readonly DevNode[],
  tls: DevTls | undefined,
): DevAgent[] {
  const servers = plan.map((n) => n.member.apiAddress.replace(/\/$/, "")).join(",");
  return Array.from({ length: options.agents }, (_, i) => {
    const id = options.nodes + i + 1;
    const dir = join(resolve(options.dataDir), `agent-${id}`);
    return {
      id,
      dir,
      args: [
        "--servers",
        servers,
        "--node-id",
        String(id),
        "--data-dir",
        dir,
        "--cluster-id",
        DEV_CLUSTER_ID,
        ...(tls === undefined ? ["--insecure"] : tls.nodeArgs(id)),
      ],
    };
  });
}

/** Reuses the node configurations in the data directory, or plans a new cluster. */
async function planNodes(options: DevOptions): Promise<DevNode[]> {
  const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
  // Absolute: a node's paths (a VM's QMP socket, which QEMU opens from another directory) must
  // not depend on where dev was started.
  const dirOf = (id: number): string => join(resolve(options.dataDir), `node-${id}`);
  const stored = await Promise.all(ids.map((id) => readNodeConfig(dirOf(id))));
  if (stored.some((c) => c !== undefined)) {
    const first = stored.find((c) => c !== undefined);
    if (
      first === undefined ||
      stored.some((c) => c === undefined) ||
      first.initialMembers.length !== options.nodes
    ) {
      throw new UnavailableError(
        `${options.dataDir} holds a cluster of another size; pass --clean to start over`,
      );
    }
    return ids.map((id, i) => {
      const member = first.initialMembers[i];
      if (member === undefined) throw new UnavailableError(`no member ${id} in ${options.dataDir}`);
      return { id, dir: dirOf(id), args: ["--data-dir", dirOf(id)], member };
    });
  }
  const host = "127.0.0.1";
  let peerPorts: number[];
  let apiPorts: number[];
  if (options.basePort === 0) {
    const ports = await freePorts(options.nodes * 2, host);
    peerPorts = ports.slice(0, options.nodes);
    apiPorts = ports.slice(options.nodes);
  } else {
    const apiBase = options.apiBasePort ?? options.basePort + API_PORT_OFFSET;
    peerPorts = ids.map((id) => options.basePort + id - 1);
    apiPorts = ids.map((id) => apiBase + id - 1);
  }
  const members: InitialMember[] = ids.map((id, i) => ({
    id,
    peerAddress: `${host}:${peerPorts[i]}`,
    apiAddress: new URL(`http://${host}:${apiPorts[i]}`).href,
  }));
  const list = formatInitialMembers(members);
  return members.map((member) => ({
    id: member.id,
    dir: dirOf(member.id),
    member,
    args: [
      "--data-dir",
      dirOf(member.id),
      "--id",
      String(member.id),
      "--cluster-id",
      DEV_CLUSTER_ID,
      "--peer-listen",
      member.peerAddress,
      "--api-listen",
      new URL(member.apiAddress).host,
      "--initial-members",
      list,
    ],
  }));
}

/** Polls every node's status until all agree on one leader; returns its id. */
async function waitForLeader(
  plan: readonly DevNode[],
  children: readonly NodeChild[],
  timeoutMs: number,
  clientTls: DevClientTls,
): Promise<number> {
  const clients = plan.map(
    (n) =>
      new BlixardClient({
        endpoints: [n.member.apiAddress],
        timeoutMs: 500,
        retries: 0,
        ...clientTls,
      }),
  );
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const dead = children.find((c) => c.hasExited());
    if (dead !== undefined) {
      throw new UnavailableError(
        `node ${dead.id} exited during start-up; the end of ${dead.logPath}:\n${logTail(dead)}`,
      );
    }
    const leaders = await Promise.all(
      clients.map((c) =>
        c.status().then(
          (s) => s.leader,
          () => null,
        ),
      ),
    );
    const [first] = leaders;
    if (first !== null && first !== undefined && leaders.every((l) => l === first)) return first;
    if (performance.now() > deadline) {
      throw new UnavailableError(`no leader after ${timeoutMs} ms; see the node.log files`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Bootstraps the ACL system once (the first start of a dev cluster) and keeps the management
 * token in `<dataDir>/management.token` (0600), where the CLI finds it; a restart reuses the
 * file. Returns its path, or undefined if the cluster was bootstrapped but the file is gone.
 */
async function ensureManagementToken(
  dataDir: string,
  plan: readonly DevNode[],
  tls: DevTls,
): Promise<string | undefined> {
  const path = join(dataDir, DEV_TOKEN_FILE);
  try {
    await access(path);
    return path;
  } catch {
    // Not bootstrapped from here yet.
  }
  const client = new BlixardClient({
    endpoints: plan.map((n) => n.member.apiAddress),
    ...tls.clientTls,
  });
  try {
    const created = await client.acl.bootstrap();
    await writeFile(path, `${created.secret}\n`, { mode: 0o600 });
    return path;
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    process.stderr.write(
      `the ACL system is bootstrapped but ${path} is gone; start afresh with --clean\n`,
    );
    return undefined;
  }
}

function report(
  options: DevOptions,
  plan: readonly DevNode[],
  agents: readonly DevAgent[],
  children: readonly NodeChild[],
  leader: number,
  tls: DevTls | undefined,
  tokenPath: string | undefined,
): void {
  const scheme = tls === undefined ? "http:" : "https:";
  const api = (n: DevNode): string => withScheme(n.member.apiAddress, scheme).replace(/\/$/, "");
  if (options.json === true) {
    printJson({
      leader,
      dataDir: options.dataDir,
      secure: tls !== undefined,
      ...(tls === undefined
        ? {}
        : { ca: tls.caPath, clientCert: tls.clientCertPath, clientKey: tls.clientKeyPath }),
      ...(tokenPath === undefined ? {} : { managementTokenFile: tokenPath }),
      nodes: plan.map((n, i) => ({
        id: n.id,
        apiUrl: api(n),
        peerAddress: n.member.peerAddress,
        pid: children[i]?.process.pid,
        leader: n.id === leader,
      })),
      agents: agents.map((a, i) => ({
        id: a.id,
        dataDir: a.dir,
        pid: children[plan.length + i]?.process.pid,
      })),
    });
    return;
  }
  const first = plan[0];
  const second = plan[1] ?? first;
  if (first === undefined || second === undefined) return;
  const endpoints = plan.map(api).join(",");
  const cacert = tls === undefined ? "" : ` --cacert ${tls.caPath}`;
  const bearer = tokenPath === undefined ? "" : ` -H "authorization: Bearer $BLIXARD_TOKEN"`;
  const out = [
    `Blixard dev cluster: ${plan.length} node(s), data and logs in ${options.dataDir}/node-<id>/`,
    tls === undefined
      ? "INSECURE (--insecure): no TLS, plain HTTP; anyone who reaches the ports controls it"
      : `TLS: CA ${tls.caPath}, root client certificate ${tls.clientCertPath} (key ${tls.clientKeyPath})`,
    "",
    formatTable(
      ["NODE", "API", "PEER", "PID", "ROLE"],
      plan.map((n, i) => [
        String(n.id),
        api(n),
        n.member.peerAddress,
        String(children[i]?.process.pid ?? "?"),
        n.id === leader ? "leader" : "follower",
      ]),
    ),
    ...(agents.length === 0
      ? []
      : [
          `Agent-only workers (no Raft; logs in ${options.dataDir}/agent-<id>/agent.log):`,
          formatTable(
            ["AGENT", "PID"],
            agents.map((a, i) => [
              String(a.id),
              String(children[plan.length + i]?.process.pid ?? "?"),
            ]),
          ),
        ]),
    ...(tokenPath === undefined
      ? []
      : [
          `Management token in ${tokenPath} (the CLI reads it from there when run here):`,
          `  export BLIXARD_TOKEN=$(cat ${tokenPath})`,
          "",
        ]),
    "Try:",
    `  export BLIXARD_ENDPOINTS=${endpoints}`,
    "  npx blixard kv put greeting hello",
    `  npx blixard kv get greeting --endpoints ${api(second)}`,
    "  npx blixard cluster members",
    `  curl${cacert}${bearer} -X PUT ${api(first)}/v1/kv/greeting -H 'content-type: application/json' -d '{"value":"hello"}'`,
    `  curl${cacert}${bearer} ${api(second)}/v1/kv/greeting`,
    "",
    "Press Ctrl-C to stop the cluster.",
    "",
  ];
  process.stdout.write(out.join("\n"));
}
