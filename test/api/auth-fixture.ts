/**
 * An API server with authorization enforced over a real ClusterStateMachine's ACL state, applied
 * to directly (a one-node "cluster" without Raft), a kv service over the same machine, and the
 * fake orchestrator node: every route of a real node is served. Certificates are simulated by a
 * test header that the server's `peerCertificate` option reads (no TLS in these tests).
 */
import type { FastifyRequest } from "fastify";
import { RaftAclService } from "../../src/api/acl-service.js";
import type { AuditEntry, AuditSink } from "../../src/api/audit/audit-log.js";
import { RaftOrchestratorService } from "../../src/api/raft-orchestrator-service.js";
import { ApiServer } from "../../src/api/server.js";
import { CoordinationService } from "../../src/api/coord-service.js";
import { CommandPort, type CommandNode } from "../../src/node/command-port.js";
import { Lessor } from "../../src/node/lessor.js";
import type { BlixardNodeService } from "../../src/api/service.js";
import { commandErrorToException } from "../../src/statemachine/command-result.js";
import { ClusterStateMachine } from "../../src/statemachine/cluster/cluster-state-machine.js";
import { encodeKvCommand } from "../../src/statemachine/kv/command-codec.js";
import type { KvResult } from "../../src/statemachine/kv/types.js";
import { encodeCommandEnvelope } from "../../src/statemachine/session/envelope.js";
import { FakeOrchestratorNode, fakeNodeService, realClock } from "./orchestrator-fakes.js";

/** The test header that stands for a verified client certificate: `cn=<CN>` or `dns=<SAN>`. */
export const TEST_CERT_HEADER = "x-test-certificate";
export const CLUSTER_ID = "test-cluster";

/** A server and the state behind it. */
export interface AuthFixture {
  readonly server: ApiServer;
  readonly machine: ClusterStateMachine;
  readonly audit: AuditEntry[];
  /** Bootstraps through the API and returns the management secret. */
  bootstrap(): Promise<string>;
  close(): Promise<void>;
}

/** Starts (without listening: use `server.app.inject`) a server with authorization enforced. */
export async function startAuthFixture(): Promise<AuthFixture> {
  const machine = new ClusterStateMachine();
  const appliedListeners = new Set<() => void>();
  let index = 0;
  const apply = (payload: Uint8Array) => {
    const result = machine.apply({
      index: ++index,
      term: 1,
      data: encodeCommandEnvelope({ proposedAtMs: Date.now(), payload }),
    });
    if (!result.ok) throw commandErrorToException(result.error);
    for (const listener of appliedListeners) setImmediate(listener);
    return result.value;
  };
  // A one-node "cluster" that applies each proposal at once, under the real command port.
  const node: CommandNode = {
    id: 1,
    leader: 1,
    isLeader: true,
    propose: async (data) => {
      const result = machine.apply({ index: ++index, term: 1, data });
      for (const listener of appliedListeners) setImmediate(listener);
      return result;
    },
    read: async (query) => query(),
    readStale: (query) => query(),
  };
  const commands = new CommandPort({ node, clock: realClock, commandTimeMs: () => Date.now() });
  const base = fakeNodeService(1);
  const kv: BlixardNodeService = {
    ...base,
    kvGet: async (key) => ({ revision: machine.revision, entry: machine.read(key) }),
    kvPut: async (request) =>
      apply(
        encodeKvCommand({
          op: "put",
          key: request.key,
          value: request.value,
          ...(request.lease === undefined ? {} : { lease: request.lease }),
        }),
      ) as Extract<KvResult, { op: "put" }>,
    kvDelete: async (request) =>
      apply(encodeKvCommand({ op: "delete", key: request.key })) as Extract<
        KvResult,
        { op: "delete" }
      >,
  };
  const orchestratorNode = new FakeOrchestratorNode();
  const audit: AuditEntry[] = [];
  const sink: AuditSink = { record: (entry) => audit.push(entry) };
  const server = new ApiServer({
    service: kv,
    // The agent-only protocol, answering at once: these tests check who may call it.
    agents: {
      assignments: async () => ({ index, worker: null, tasks: [], vms: [] }),
      heartbeat: async () => ({ leaderId: 1, workerDeadAfterMs: 10_000 }),
      relayed: () => ({ leaderId: 1, workerDeadAfterMs: 10_000 }),
      disks: (_nodeId, names) => ({ disks: names.map((name) => ({ name, verdict: "deleted" })) }),
    },
    orchestrator: new RaftOrchestratorService({
      node: orchestratorNode,
      commands: new CommandPort({ node: orchestratorNode, clock: realClock }),
      clock: realClock,
    }),
    acl: new RaftAclService({ commands, acl: machine.acl, now: () => Date.now() }),
    coordination: new CoordinationService({
      commands,
      node: {
        leaderTerm: () => 1,
        store: machine,
        onApplied: (listener) => {
          appliedListeners.add(listener);
          return () => appliedListeners.delete(listener);
        },
        lessor: new Lessor({
          port: {
            leaderTerm: () => 1,
            forEachLease: (visit) => machine.forEachLease(visit),
            leaseTtlMs: (id) => machine.lease(id)?.ttlMs,
            leaseCount: () => machine.leaseCount,
            proposeRevoke: async (ids) => apply(encodeKvCommand({ op: "leaseRevoke", ids })),
          },
          clock: realClock,
        }),
        now: () => realClock.now(),
      },
    }),
    audit: sink,
    auth: {
      mode: "enforce",
      acl: machine.acl,
      clusterId: CLUSTER_ID,
      peerCertificate: (request: FastifyRequest) => {
        const value = request.headers[TEST_CERT_HEADER];
        if (typeof value !== "string") return undefined;
        return value.startsWith("dns=")
          ? { commonName: "", dnsNames: [value.slice(4)] }
          : { commonName: value.slice(3), dnsNames: [] };
      },
    },
  });
  await server.app.ready();
  return {
    server,
    machine,
    audit,
    bootstrap: async () => {
      const response = await server.app.inject({ method: "POST", url: "/v1/acl/bootstrap" });
      if (response.statusCode !== 200) throw new Error(`bootstrap: ${response.body}`);
      return (response.json() as { secret: string }).secret;
    },
    close: () => server.close(),
  };
}

/** The Authorization header of a secret. */
export const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

/** A concrete URL for a route pattern (every `:param` filled in). */
export function concreteUrl(pattern: string): string {
  return pattern.replace(/:([A-Za-z]+)/g, (_, name: string) => (name === "id" ? "2" : `x${name}`));
}
