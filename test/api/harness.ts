/**
 * An in-process cluster for API tests: three RaftNodes on a loopback network with in-memory
 * logs and the real clock (short ticks), each with its own API server on 127.0.0.1.
 */
import { ApiServer } from "../../src/api/server.js";
import { InMemoryMemberDirectory, memberApiUrl } from "../../src/api/member-directory.js";
import { ApiMetrics } from "../../src/api/metrics.js";
import type { NodeResult } from "../../src/api/node-composition.js";
import { RaftKvService } from "../../src/api/raft-service.js";
import { SeededRandom } from "../../src/common/random.js";
import { CommandPort } from "../../src/node/command-port.js";
import { RaftNode } from "../../src/node/raft-node.js";
import { SystemClock } from "../../src/platform/clock.js";
import { ClusterStateMachine } from "../../src/statemachine/cluster/cluster-state-machine.js";
import { MemoryLogStore } from "../../src/storage/memory-log-store.js";
import { LoopbackNetwork } from "../node/fakes.js";

/** One node of the test cluster. */
export interface TestNode {
  readonly id: number;
  readonly node: RaftNode<NodeResult>;
  readonly kv: ClusterStateMachine;
  readonly service: RaftKvService;
  readonly server: ApiServer;
  readonly url: URL;
}

/** A running test cluster. */
export interface TestCluster {
  readonly nodes: readonly TestNode[];
  readonly network: LoopbackNetwork;
  /** Polls until a leader is known everywhere; returns it. */
  leader(): Promise<TestNode>;
  followers(): Promise<TestNode[]>;
  stop(): Promise<void>;
}

/** Polls `condition` every few ms until it returns a value other than undefined, or throws. */
export async function until<T>(
  condition: () => T | undefined | Promise<T | undefined>,
  what: string,
  deadlineMs = 5000,
): Promise<T> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined) return value;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Starts a cluster of `size` voters with one API server per node. */
export async function startCluster(
  options: { size?: number; requestTimeoutMs?: number; bodyLimitBytes?: number } = {},
): Promise<TestCluster> {
  const ids = Array.from({ length: options.size ?? 3 }, (_, i) => i + 1);
  const confState = {
    voters: ids,
    learners: [],
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  };
  const clock = new SystemClock();
  const network = new LoopbackNetwork();
  const directory = new InMemoryMemberDirectory();
  const nodes: TestNode[] = [];
  for (const id of ids) {
    const kv = new ClusterStateMachine();
    const node = new RaftNode<NodeResult>({
      id,
      logStore: new MemoryLogStore({ confState }),
      stateMachine: kv,
      transport: network.transport(id),
      clock,
      random: new SeededRandom(id * 7919),
      tickIntervalMs: 20,
    });
    const metrics = new ApiMetrics(id);
    const commands = new CommandPort({
      node,
      clock,
      leaderAddress: (peer) => memberApiUrl(directory, peer),
      metrics,
    });
    const service = new RaftKvService({ node, commands, kv, directory });
    const server = new ApiServer({
      // These tests are about the API's behaviour, not its authorization (test/api/auth-*.test.ts).
      auth: { mode: "insecure-open" },
      service,
      metrics,
      ...(process.env["BLIXARD_TEST_LOG"] === undefined ? {} : { logLevel: "error" as const }),
      ...(options.requestTimeoutMs === undefined
        ? {}
        : { requestTimeoutMs: options.requestTimeoutMs }),
      ...(options.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: options.bodyLimitBytes }),
    });
    const url = await server.listen();
    directory.set(id, { raftAddress: `loopback:${id}`, apiAddress: url.href });
    node.start();
    nodes.push({ id, node, kv, service, server, url });
  }
  const leader = (): Promise<TestNode> =>
    until(() => {
      const leaders = nodes.filter((n) => n.node.isLeader);
      const first = leaders[0];
      if (leaders.length !== 1 || first === undefined) return undefined;
      return nodes.every((n) => n.node.leader === first.id) ? first : undefined;
    }, "a leader known to every node");
  return {
    nodes,
    network,
    leader,
    followers: async () => {
      const l = await leader();
      return nodes.filter((n) => n !== l);
    },
    stop: async () => {
      for (const n of nodes) await n.server.close();
      for (const n of nodes) await n.node.stop();
    },
  };
}

/** Sends a JSON request and returns status, headers and parsed body. */
export async function call(
  base: URL,
  method: string,
  path: string,
  options: { body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined;
  if (options.rawBody !== undefined) {
    body = options.rawBody;
    headers["content-type"] ??= "application/json";
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] = "application/json";
  }
  const response = await fetch(new URL(path, base), {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON (metrics): keep the text.
  }
  return { status: response.status, headers: response.headers, body: parsed };
}
