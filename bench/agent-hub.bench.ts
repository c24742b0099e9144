/**
 * The server side of the agent protocol in one process, no network: what an applied entry costs
 * the agent hub when many agents wait on it, and what a heartbeat costs the leader.
 *
 *   npx tsx bench/agent-hub.bench.ts [-- --agents 1000 --tasks 9000]
 *
 * Registers `--agents` workers in a real cluster state machine applied through the real change
 * feed, parks one assignment poll per agent (as agents do between changes), then applies
 * `--tasks` submits one at a time (each placed on one worker) and lets the hub catch up after
 * each: the apply-plus-wake time per entry and how many polls each entry woke (each woken poll
 * is re-parked at once, as its agent would). Then `--agents` × 100 heartbeats into the table.
 * Prints the numbers and one line `BENCH_JSON {...}`.
 */
import { parseArgs } from "node:util";
import { AgentHub } from "../src/api/agents/agent-hub.js";
import { ChangeFeed } from "../src/api/events/change-feed.js";
import { HeartbeatTable } from "../src/orchestrator/heartbeats.js";
import { SystemClock } from "../src/platform/index.js";
import {
  ClusterStateMachine,
  encodeOrchestratorCommand,
} from "../src/statemachine/cluster/index.js";
import { RAW_EXEC_FEATURE } from "../src/statemachine/orchestrator/features.js";
import type { OrchestratorCommand } from "../src/statemachine/orchestrator/index.js";
import { encodeCommandEnvelope } from "../src/statemachine/session/envelope.js";

const { values: args } = parseArgs({
  options: {
    agents: { type: "string", default: "1000" },
    tasks: { type: "string", default: "9000" },
  },
});
const AGENTS = Number(args.agents);
const TASKS = Number(args.tasks);
const FIRST_AGENT = 100;

const clock = new SystemClock();
const machine = new ClusterStateMachine();
const feed = new ChangeFeed(machine);
const wrapped = feed.wrap(machine);
let index = 0;
function apply(command: OrchestratorCommand): void {
  const data = encodeCommandEnvelope({
    proposedAtMs: 0,
    payload: encodeOrchestratorCommand(command),
  });
  const result = wrapped.apply({ index: ++index, term: 1, data });
  if (!result.ok) throw new Error(JSON.stringify(result.error));
}

const hub = new AgentHub({
  feed,
  queries: machine.orchestrator,
  clock,
  leadership: { nodeId: 1, isLeader: () => true, leaderHint: () => undefined },
  heartbeats: new HeartbeatTable(),
  workerDeadAfterMs: 10_000,
  isServer: (id) => id < FIRST_AGENT,
  limits: { maxWaiters: AGENTS * 2 },
});
for (let i = 0; i < AGENTS; i++) {
  apply({
    type: "registerWorker",
    nodeId: FIRST_AGENT + i,
    capacity: { cpuMillis: 1_000_000, memoryMb: 1_000_000, diskGb: 1000 },
    features: [RAW_EXEC_FEATURE],
  });
}
// Settings: spread, so the submits go round the agents.
apply({ type: "setSettings", settings: { placement: "spread" } });
let woken = 0;
function park(nodeId: number): void {
  void hub.assignments(nodeId, index, 600_000).then(
    () => {
      woken++;
      park(nodeId);
    },
    () => undefined,
  );
}
// Let the hub read the registrations first, so the parked polls wait.
await hub.assignments(FIRST_AGENT, 0, 0);
for (let i = 0; i < AGENTS; i++) park(FIRST_AGENT + i);
await new Promise((resolve) => setImmediate(resolve));
const parked = hub.waitingPolls;
woken = 0;

const started = performance.now();
let hubMs = 0;
for (let t = 0; t < TASKS; t++) {
  apply({
    type: "submitTask",
    id: `t${t}`,
    spec: {
      command: "true",
      args: [],
      env: {},
      cwd: "",
      shell: false,
      resources: { cpuMillis: 1, memoryMb: 1, diskGb: 0 },
      requiredFeatures: [],
      timeoutMs: 0,
      maxAttempts: 1,
    },
  });
  // The hub catches up when the next poll arrives or the feed notifies: force it per entry
  // (this also builds one answer, as a woken poll does).
  const hubStarted = performance.now();
  await hub.assignments(FIRST_AGENT, Number.MAX_SAFE_INTEGER, 0);
  hubMs += performance.now() - hubStarted;
  await Promise.resolve();
}
const elapsedMs = performance.now() - started;
await new Promise((resolve) => setImmediate(resolve));

const heartbeats = AGENTS * 100;
const hbStarted = performance.now();
for (let i = 0; i < heartbeats; i++) void hub.heartbeat(FIRST_AGENT + (i % AGENTS));
const hbMs = performance.now() - hbStarted;
hub.close();

const result = {
  agents: AGENTS,
  parkedPolls: parked,
  entries: TASKS,
  usPerEntry: Number(((elapsedMs * 1000) / TASKS).toFixed(1)),
  hubUsPerEntry: Number(((hubMs * 1000) / TASKS).toFixed(1)),
  pollsWokenPerEntry: Number((woken / TASKS).toFixed(2)),
  heartbeatNs: Math.round((hbMs * 1e6) / heartbeats),
};
process.stderr.write(
  `${AGENTS} agents, ${parked} polls parked: ${result.usPerEntry} µs per applied submit ` +
    `(apply + placement + hub catch-up), of which the hub ${result.hubUsPerEntry} µs; ` +
    `${result.pollsWokenPerEntry} polls woken per entry; ` +
    `a heartbeat into the table: ${result.heartbeatNs} ns\n`,
);
process.stdout.write(`BENCH_JSON ${JSON.stringify(result)}\n`);
