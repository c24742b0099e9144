/**
 * Scale harness (issue 18): N lightweight agent-only workers in this process speak the real
 * agent protocol (`bench/cluster/agent-fleet.ts`: RemoteAgent over AgentHttpLink, no drivers,
 * tasks "finish" at once) to a real 3-server cluster (`blixard node start --no-worker`, the
 * compiled dist/, mutual TLS unless `--insecure`):
 *
 *   npm run bench:scale [-- --agents 1000 --tasks 100000 --kill 50 --dead-after-ms 10000]
 *   npm run bench:scale -- --quick            (50 agents, 2,000 tasks, 5 killed: development)
 *
 * Phases:
 * 1. **Register** N agents (waves of 50): time until the servers list all of them online.
 * 2. **Idle** (`--idle-s`, 10 s): heartbeats only; the CPU each server process used
 *    (/proc/PID/stat utime+stime) over the window, in % of one core. The leader's is
 *    `leaderHeartbeatCpuPct`: everything the leader did meanwhile (agents' heartbeats, the
 *    assignment polls it serves, Raft's own heartbeats), so an upper bound for heartbeats.
 * 3. **Submit** T tasks: `submitTasks` batches (`POST /v1/tasks/batch`), or with `--no-batch`
 *    concurrent single submits; a submit (or batch item) refused OVERLOADED (the model caps unfinished
 *    tasks) waits and is sent again. A task is placed when its submit's answer shows it assigned
 *    (or later), or when an agent starts it, whichever is first; placements/s = T / (last
 *    placement − first submit). Running = its `taskStarted` report acknowledged (the server
 *    answers once applied), finished likewise. Server CPU over the phase and peak RSS (VmHWM).
 * 4. **Kill**: one `hold` task per agent (runs until stopped), then `--kill` agents that hold
 *    one are closed at once without stopping their work (they go silent). The time until the
 *    servers list every one offline (`deadAgentDetectMs`, polled every 100 ms: compare with the
 *    TTL + 1 s) and until each of their tasks runs on another agent.
 *
 * Prints a table of the targets and one line `BENCH_JSON {...}`.
 */
import { loadavg } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { BlixardClient } from "../src/client/index.js";
import type { TaskSpecRequest } from "../src/api/schema/orchestrator.js";
import { DEFAULT_WORKER_DEAD_AFTER_MS } from "../src/orchestrator/liveness.js";
import { SystemClock } from "../src/platform/index.js";
import { ensureBuilt } from "../test/cli/helpers.js";
import { AgentFleet, HOLD_COMMAND } from "./cluster/agent-fleet.js";
import { quantile } from "./cluster/load.js";
import {
  cleanupSync,
  cpuSeconds,
  machineCpuSeconds,
  sleep,
  tempDir,
  until,
} from "./cluster/procs.js";
import { ScaleServers } from "./cluster/scale-servers.js";

const { values: args } = parseArgs({
  options: {
    agents: { type: "string" },
    tasks: { type: "string" },
    kill: { type: "string" },
    quick: { type: "boolean", default: false },
    insecure: { type: "boolean", default: false },
    // The servers' default (`--worker-dead-after-ms`): the heartbeat rate and the agents'
    // disconnect grace follow from it, so the targets are judged at the settings that ship.
    "dead-after-ms": { type: "string", default: String(DEFAULT_WORKER_DEAD_AFTER_MS) },
    "heartbeat-ms": { type: "string" },
    "idle-s": { type: "string", default: "10" },
    concurrency: { type: "string", default: "64" },
    batch: { type: "string", default: "1000" },
    "no-batch": { type: "boolean", default: false },
    placement: { type: "string", default: "spread" },
    "log-level": { type: "string", default: "warn" },
    "keep-dir": { type: "boolean", default: false },
    "cpu-prof": { type: "boolean", default: false },
    // Election timeouts of 2-4 s (the node's default is 250-500 ms): on this shared 2-core
    // machine, at a load average of 10+, servers starved for half a second held elections over
    // and over, and the numbers measured the elections. Pass 25 and 10 for the node's defaults.
    "tick-ms": { type: "string", default: "50" },
    "election-ticks": { type: "string", default: "40" },
  },
});
const QUICK = args.quick === true;
const AGENTS = Number(args.agents ?? (QUICK ? 50 : 1000));
const TASKS = Number(args.tasks ?? (QUICK ? 2000 : 100_000));
const KILL = Math.min(AGENTS, Number(args.kill ?? (QUICK ? 5 : 50)));
const DEAD_AFTER_MS = Number(args["dead-after-ms"]);
const HEARTBEAT_MS = args["heartbeat-ms"] === undefined ? undefined : Number(args["heartbeat-ms"]);
const IDLE_S = Number(args["idle-s"]);
const CONCURRENCY = Number(args.concurrency);
const BATCH = Number(args.batch);
const MODE = args.insecure === true ? "insecure" : "tls";
/** Agents' node ids start here (the servers are 1..3). */
const FIRST_AGENT_ID = 101;
/** A small task; agents offer room for hundreds of them at once. */
const TASK_RESOURCES = { cpuMillis: 100, memoryMb: 16, diskGb: 0 };
const AGENT_CAPACITY = { cpuMillis: 64_000, memoryMb: 256 * 1024, diskGb: 1000 };

const TARGET_PLACEMENTS_PER_SEC = 3000;
const TARGET_LEADER_HEARTBEAT_CPU_PCT = 10;

const clock = new SystemClock();

function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** The largest value (NaN if any is NaN); a loop, as 100,000 spread arguments may overflow. */
function maxOf(values: readonly number[]): number {
  let max = -Infinity;
  for (const v of values) max = Number.isNaN(v) || Number.isNaN(max) ? NaN : Math.max(max, v);
  return max;
}

/** A process's peak resident set (VmHWM), MiB; NaN if unreadable. */
function peakRssMb(pid: number): number {
  try {
    const line = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return line === null ? Number.NaN : round(Number(line[1]) / 1024);
  } catch {
    return Number.NaN;
  }
}

/** CPU each server and this process used between two calls, in % of one core. */
function cpuMeter(pids: readonly number[]): () => {
  servers: number[];
  bench: number;
  machine: number;
  seconds: number;
} {
  const start = pids.map(cpuSeconds);
  const benchStart = process.cpuUsage();
  const machineStart = machineCpuSeconds();
  const t0 = performance.now();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const bench = process.cpuUsage(benchStart);
    const machine = machineCpuSeconds();
    return {
      servers: pids.map((pid, i) => round(((cpuSeconds(pid) - (start[i] ?? 0)) / seconds) * 100)),
      bench: round(((bench.user + bench.system) / 1e6 / seconds) * 100),
      machine: round(((machine.busy - machineStart.busy) / seconds) * 100),
      seconds: round(seconds, 2),
    };
  };
}

/** Whether to submit in batches (`POST /v1/tasks/batch`); `--no-batch` sends single submits. */
const BATCHED = args["no-batch"] !== true;

interface AckedTask {
  readonly id: string;
  readonly status: string;
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}

/** Submits `count` tasks of `command`; resolves with their ids, placement times noted. */
async function submitAll(
  clients: readonly BlixardClient[],
  count: number,
  command: string,
  placedAtMs: Map<string, number>,
  counters: { overloaded: number; errors: number; firstError: string },
): Promise<string[]> {
  // Attempts enough for a hold task to be lost on several dying agents in a row: until the
  // last victim is marked offline, a lost task may be placed on another one still listed online.
  const spec: TaskSpecRequest = { command, resources: TASK_RESOURCES, maxAttempts: 10 };
  const ids: string[] = [];
  const note = (tasks: readonly AckedTask[]): void => {
    const now = clock.now();
    for (const t of tasks) {
      ids.push(t.id);
      if (t.status !== "pending" && !placedAtMs.has(t.id)) placedAtMs.set(t.id, now);
    }
  };
  const retrying = async <T>(send: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        return await send();
      } catch (error) {
        if (errorCode(error) === "OVERLOADED") {
          if (counters.overloaded++ === 0) log(`first OVERLOADED: ${String(error)}`);
        } else {
          counters.errors++;
          if (counters.firstError === "") counters.firstError = String(error);
          if (counters.errors > 1000) throw error;
        }
        await sleep(25);
      }
    }
  };
  let next = 0;
  const lanes = BATCHED ? Math.max(1, Math.ceil(CONCURRENCY / 16)) : CONCURRENCY;
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      // A session keeps at most 64 unacknowledged results: a client per 16 lanes.
      const client = clients[Math.floor(lane / 16) % clients.length] as BlixardClient;
      for (;;) {
        const from = next;
        const size = Math.min(BATCHED ? BATCH : 1, count - from);
        if (size <= 0) return;
        next += size;
        if (!BATCHED) {
          note([await retrying(() => client.orchestrator.submitTask(spec))]);
          continue;
        }
        // Items refused OVERLOADED (the cap on unfinished tasks) are sent again after a pause.
        let left = size;
        while (left > 0) {
          const specs = Array.from({ length: left }, () => spec);
          const { items } = await retrying(() => client.orchestrator.submitTasks(specs));
          const taken = items.filter((item) => item.ok);
          note(taken);
          left -= taken.length;
          const refused = items.find((item) => !item.ok);
          if (refused !== undefined && !refused.ok) {
            if (refused.code !== "OVERLOADED")
              throw new Error(`${refused.code}: ${refused.message}`);
            if (counters.overloaded++ === 0) log(`first OVERLOADED: ${refused.message}`);
            await sleep(25);
          }
        }
      }
    }),
  );
  return ids;
}

/** The agents' warning when a disconnect grace ran out (they stop their work then). */
const CUT_OFF_WARNING =
  "cut off from the cluster for the disconnect grace: stopping every task and VM here " +
  "(the cluster moves them elsewhere)";
/** Waiting for tasks to finish ends after this long without one more finishing. */
const STALL_S = 30;
/** After this long without one more finishing, the servers are asked about sent finishes. */
const ASK_AFTER_MS = 2_000;
/** Statuses in which a task is over. */
const OVER = new Set(["succeeded", "failed", "timed_out", "cancelled", "lost"]);

/**
 * Waits until every task of `ids` was reported finished by an agent, or until none more finished
 * for {@link STALL_S}; then says what the servers show for (up to 200 of) the rest.
 *
 * A finish whose answer the agent never got (its request timed out, the server applied it
 * anyway) is refused when the agent sends it again, as the model has moved on: the fleet never
 * sees it acknowledged. So while nothing more finishes, the servers are asked every
 * {@link ASK_AFTER_MS} about (up to 200) tasks whose finish was sent but not acknowledged; a
 * task they show over counts as finished at the time of that answer (later than it finished:
 * never kinder than the truth). Returns how many were counted so.
 */
async function waitFinished(
  client: BlixardClient,
  ids: readonly string[],
  fleet: AgentFleet,
): Promise<{ count: number; statuses: Record<string, number>; confirmedByServers: number }> {
  let finished = -1;
  let changedAt = performance.now();
  let askedAt = 0;
  let confirmedByServers = 0;
  for (;;) {
    let count = 0;
    for (const id of ids) if (fleet.finishedAtMs.has(id)) count++;
    if (count === ids.length) return { count: 0, statuses: {}, confirmedByServers };
    const stalledMs = performance.now() - changedAt;
    if (count !== finished) {
      finished = count;
      changedAt = performance.now();
    } else if (stalledMs > ASK_AFTER_MS && performance.now() - askedAt > ASK_AFTER_MS) {
      askedAt = performance.now();
      const sent = ids.filter((id) => fleet.finishSent.has(id) && !fleet.finishedAtMs.has(id));
      for (const id of sent.slice(0, 200)) {
        const over = await client.orchestrator.getTask(id).then(
          (t) => OVER.has(t.status),
          () => false,
        );
        if (over && !fleet.finishedAtMs.has(id)) {
          fleet.finishedAtMs.set(id, clock.now());
          confirmedByServers++;
        }
      }
    }
    if (count === finished && stalledMs > STALL_S * 1000) {
      const rest = ids.filter((id) => !fleet.finishedAtMs.has(id));
      const statuses: Record<string, number> = {};
      for (const id of rest.slice(0, 200)) {
        const status = await client.orchestrator
          .getTask(id)
          .then((t) => t.status as string)
          .catch((error: unknown) => errorCode(error) || "error");
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
      return { count: rest.length, statuses, confirmedByServers };
    }
    await sleep(200);
  }
}

async function main(): Promise<void> {
  await ensureBuilt();
  const root = tempDir("blixard-bench-scale-");
  const servers = new ScaleServers({
    root,
    size: 3,
    insecure: MODE === "insecure",
    workerDeadAfterMs: DEAD_AFTER_MS,
    extraArgs: [
      "--log-level",
      args["log-level"] ?? "warn",
      "--tick-ms",
      args["tick-ms"] ?? "50",
      "--election-ticks",
      args["election-ticks"] ?? "40",
    ],
    // Each server writes a .cpuprofile under <dir>/profiles when it stops (with --keep-dir).
    ...(args["cpu-prof"] === true
      ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${join(root, "profiles")}`] }
      : {}),
  });
  let fleet: AgentFleet | undefined;
  try {
    log(`starting 3 servers (${MODE}, --worker-dead-after-ms ${DEAD_AFTER_MS})`);
    await servers.start();
    const client = servers.client();
    await client.orchestrator.setSettings({ placement: args.placement as "spread" | "binpack" });
    const pids = [0, 1, 2].map((i) => servers.pid(i));
    const loadAtStart = loadavg().map((l) => round(l, 2));

    // 0. The servers alone (Raft heartbeats, monitors): the baseline the idle phase adds to.
    const baselineMeter = cpuMeter(pids);
    await sleep((IDLE_S * 1000) / 2);
    const baseline = baselineMeter();
    log(`baseline, no agents: server CPU ${baseline.servers.join("/")}%`);

    // 1. Register.
    log(`phase 1: registering ${AGENTS} agents`);
    fleet = new AgentFleet({
      servers: servers.endpoints,
      ...(servers.tls === undefined ? {} : { tls: servers.tls }),
      count: AGENTS,
      firstNodeId: FIRST_AGENT_ID,
      capacity: AGENT_CAPACITY,
      workerDeadAfterMs: DEAD_AFTER_MS,
      ...(HEARTBEAT_MS === undefined ? {} : { heartbeatIntervalMs: HEARTBEAT_MS }),
      clock,
    });
    const issueStart = performance.now();
    await fleet.issueCertificates();
    if (servers.tls !== undefined) {
      log(`issued ${AGENTS} agent certificates in ${round(performance.now() - issueStart, 0)} ms`);
    }
    const registerMeter = cpuMeter(pids);
    const registerStart = performance.now();
    await fleet.start();
    // A list that times out while the registration wave loads the servers is asked again.
    const onlineAgents = async (): Promise<number> =>
      (
        await client.orchestrator.listWorkers().catch((error: unknown) => {
          if ((error as { code?: unknown }).code === "TIMEOUT") return [];
          throw error;
        })
      ).filter((w) => w.nodeId >= FIRST_AGENT_ID && w.status === "online").length;
    await until(
      async () => ((await onlineAgents()) === AGENTS ? true : undefined),
      `all ${AGENTS} agents online`,
      120_000,
    );
    const registerMs = round(performance.now() - registerStart, 0);
    const registerCpu = registerMeter();
    log(`all ${AGENTS} agents online after ${registerMs} ms (server CPU ${registerCpu.servers}%)`);

    // 2. Idle: heartbeats only.
    await sleep(Math.min(3000, DEAD_AFTER_MS)); // let the registration wave settle
    const leader = await servers.leaderIndex();
    log(`phase 2: ${IDLE_S} s of heartbeats only (leader: server ${leader + 1})`);
    const beatsBefore = fleet.heartbeatsSent;
    fleet.heartbeatRttMs.length = 0;
    const idleMeter = cpuMeter(pids);
    await sleep(IDLE_S * 1000);
    const idle = idleMeter();
    const heartbeatsPerSec = round((fleet.heartbeatsSent - beatsBefore) / idle.seconds);
    const leaderHeartbeatCpuPct = idle.servers[leader] ?? Number.NaN;
    const leaderBaselinePct = baseline.servers[leader] ?? Number.NaN;
    const leaderUsPerHeartbeat = round(
      ((leaderHeartbeatCpuPct - leaderBaselinePct) / 100 / heartbeatsPerSec) * 1e6,
      0,
    );
    const idleLoad = loadavg().map((l) => round(l, 2));
    const rtts = [...fleet.heartbeatRttMs].sort((a, b) => a - b);
    const heartbeatRtt = {
      p50Ms: round(quantile(rtts, 0.5)),
      p99Ms: round(quantile(rtts, 0.99)),
      maxMs: round(rtts.at(-1) ?? Number.NaN),
    };
    log(
      `idle: ${heartbeatsPerSec} heartbeats/s; server CPU ${idle.servers.join("/")}% ` +
        `(leader ${leaderHeartbeatCpuPct}%, ${leaderBaselinePct}% without agents: ` +
        `${leaderUsPerHeartbeat} µs per heartbeat), ` +
        `bench ${idle.bench}%, machine ${idle.machine}%, load ${idleLoad.join(" ")}; heartbeat ` +
        `round trip p50 ${heartbeatRtt.p50Ms} ms, p99 ${heartbeatRtt.p99Ms} ms, max ${heartbeatRtt.maxMs} ms`,
    );

    // 3. Submit.
    const placedAtMs = new Map<string, number>();
    const counters = { overloaded: 0, errors: 0, firstError: "" };
    const submitMode = BATCHED ? "batch" : "single";
    log(`phase 3: submitting ${TASKS} tasks (${submitMode})`);
    const submitMeter = cpuMeter(pids);
    const t0 = clock.now();
    const f = fleet;
    // This process runs every agent: a stalled event loop here delays their heartbeats and
    // fires their disconnect guards as surely as a stalled server would. Say how long it stalled.
    const loopDelay = monitorEventLoopDelay({ resolution: 20 });
    loopDelay.enable();
    const progress = setInterval(() => {
      log(
        `  ${placedAtMs.size} acked placed, ${f.runs.size} started by agents, ` +
          `${f.runningAtMs.size} running, ${f.finishedAtMs.size} finished, ` +
          `${counters.overloaded} OVERLOADED, ${counters.errors} errors; agents cut off ` +
          `${f.log.warnings.get(CUT_OFF_WARNING) ?? 0} times; ${f.connectionsOpened} TLS ` +
          `connections opened; bench event loop delay max ` +
          `${round(loopDelay.max / 1e6)} ms, p99 ${round(loopDelay.percentile(99) / 1e6)} ms`,
      );
      loopDelay.reset();
    }, 5000);
    const submitters = Array.from({ length: Math.ceil(CONCURRENCY / 16) }, () => servers.client());
    const ids = await submitAll(submitters, TASKS, "true", placedAtMs, counters);
    const submittedMs = clock.now() - t0;
    log(`submitted ${ids.length} in ${round(submittedMs, 0)} ms; waiting for all to finish`);
    const unfinished = await waitFinished(client, ids, f).finally(() => clearInterval(progress));
    if (unfinished.confirmedByServers > 0) {
      log(
        `${unfinished.confirmedByServers} tasks counted finished when the servers showed them ` +
          "over: their finish report applied, but its answer never reached the agent",
      );
    }
    if (unfinished.count > 0) {
      log(
        `${unfinished.count} tasks never finished on an agent (no progress for ${STALL_S} s); ` +
          `their statuses (a sample): ${JSON.stringify(unfinished.statuses)}`,
      );
    }
    const submit = submitMeter();
    const placedTimes = ids
      .map((id) => Math.min(placedAtMs.get(id) ?? Infinity, f.runs.get(id)?.[0]?.atMs ?? Infinity))
      .filter((t) => t !== Infinity);
    const lastPlacedMs = maxOf(placedTimes) - t0;
    const placementsPerSec = round(placedTimes.length / (lastPlacedMs / 1000), 0);
    const sortedPlaced = [...placedTimes].sort((a, b) => a - b);
    const firstChunk = Math.min(placedTimes.length, 10_000);
    const burstPlacementsPerSec = round(
      firstChunk / (((sortedPlaced[firstChunk - 1] ?? t0) - t0) / 1000),
      0,
    );
    const allRunningMs = round(
      maxOf(
        // A start report still unsent when the finish came is replaced by it: finished counts.
        ids.map((id) => f.runningAtMs.get(id) ?? f.finishedAtMs.get(id) ?? NaN),
      ) - t0,
      0,
    );
    const allFinishedMs = round(maxOf(ids.map((id) => f.finishedAtMs.get(id) ?? NaN)) - t0, 0);
    const peakRss = pids.map(peakRssMb);
    const submitLoad = loadavg().map((l) => round(l, 2));
    log(
      `placed ${placedTimes.length} of ${ids.length} in ${round(lastPlacedMs, 0)} ms: ${placementsPerSec} placements/s ` +
        `(first ${firstChunk}: ${burstPlacementsPerSec}/s); all running ${allRunningMs} ms, ` +
        `all finished ${allFinishedMs} ms; OVERLOADED retries ${counters.overloaded}, errors ` +
        `${counters.errors}; server CPU ${submit.servers.join("/")}%, bench ${submit.bench}%, ` +
        `peak RSS ${peakRss.join("/")} MiB, load ${submitLoad.join(" ")}; reports so far ` +
        `${f.reportsSent} in ${f.reportRequests} requests (log entries); ${f.pollAnswers} poll ` +
        `answers carrying ${f.tasksInAnswers} tasks; ${f.connectionsOpened} TLS connections opened`,
    );

    // 4. Kill agents holding work.
    log(`phase 4: one hold task per agent, then killing ${KILL} agents that hold one`);
    const holdIds = await submitAll(submitters, AGENTS, HOLD_COMMAND, new Map(), counters);
    await until(
      () => (holdIds.every((id) => f.runningAtMs.has(id)) ? true : undefined),
      "every hold task running",
      60_000,
    ).catch((error: unknown) => log(`going on with the hold tasks that run: ${String(error)}`));
    // Victims spread over the id range, as failures would be: taking the lowest ids would kill
    // the very agents the scheduler's tie-break (lowest id) sends the lost work to.
    const allHolders = [...f.holders(holdIds)].sort(([a], [b]) => a - b);
    const holders = Array.from(
      { length: Math.min(KILL, allHolders.length) },
      (_, k) => allHolders[Math.floor((k * allHolders.length) / KILL)] as [number, string[]],
    );
    const victims = holders.map(([nodeId]) => nodeId);
    const orphaned = holders.flatMap(([, tasks]) => tasks);
    const orphanedRunsBefore = new Map(orphaned.map((id) => [id, f.runs.get(id)?.length ?? 0]));
    const killedAt = performance.now();
    await f.kill(victims);
    let deadAgentDetectMs = Number.NaN;
    let rescheduleMs = Number.NaN;
    const victimSet = new Set(victims);
    await until(
      async () => {
        const now = performance.now() - killedAt;
        if (Number.isNaN(deadAgentDetectMs)) {
          const workers = await client.orchestrator.listWorkers();
          const offline = workers.filter((w) => victimSet.has(w.nodeId) && w.status === "offline");
          if (offline.length === victims.length) deadAgentDetectMs = round(now, 0);
        }
        if (Number.isNaN(rescheduleMs)) {
          const moved = orphaned.every((id) => {
            const runs = f.runs.get(id) ?? [];
            const last = runs.at(-1);
            return (
              runs.length > (orphanedRunsBefore.get(id) ?? 0) &&
              last !== undefined &&
              !victimSet.has(last.nodeId)
            );
          });
          if (moved) rescheduleMs = round(performance.now() - killedAt, 0);
        }
        return Number.isNaN(deadAgentDetectMs) || Number.isNaN(rescheduleMs) ? undefined : true;
      },
      `the ${victims.length} killed agents offline and their work moved`,
      DEAD_AFTER_MS * 4 + 30_000,
    ).catch(async (error: unknown) => {
      log(String(error));
      const statuses: Record<string, number> = {};
      for (const id of orphaned) {
        const task = await client.orchestrator.getTask(id).catch(() => undefined);
        const key = `${task?.status ?? "unknown"}@${victimSet.has(task?.nodeId ?? 0) ? "victim" : "other"}`;
        statuses[key] = (statuses[key] ?? 0) + 1;
      }
      log(`the killed agents' tasks now: ${JSON.stringify(statuses)}`);
    });
    log(
      `killed ${victims.length} agents (${orphaned.length} tasks): all offline after ` +
        `${deadAgentDetectMs} ms (TTL ${DEAD_AFTER_MS} ms), work started elsewhere after ` +
        `${rescheduleMs} ms`,
    );

    const warnings = Object.fromEntries(f.log.warnings);
    if (f.log.warnings.size > 0) {
      log(`agent warnings: ${JSON.stringify(warnings)}`);
      log(`each one's first fields: ${JSON.stringify(Object.fromEntries(f.log.first))}`);
    }
    const rows: [string, string, string, boolean][] = [
      [
        `placements/s with ${AGENTS} agents (${MODE})`,
        `≥ ${TARGET_PLACEMENTS_PER_SEC}`,
        String(placementsPerSec),
        placementsPerSec >= TARGET_PLACEMENTS_PER_SEC,
      ],
      [
        `leader CPU, heartbeats of ${AGENTS} agents (${MODE})`,
        `< ${TARGET_LEADER_HEARTBEAT_CPU_PCT}% of a core`,
        `${leaderHeartbeatCpuPct}% (${heartbeatsPerSec}/s)`,
        leaderHeartbeatCpuPct < TARGET_LEADER_HEARTBEAT_CPU_PCT,
      ],
      [
        `dead agents detected (${victims.length} killed)`,
        `≤ TTL + 1 s = ${DEAD_AFTER_MS + 1000} ms`,
        `${deadAgentDetectMs} ms`,
        deadAgentDetectMs <= DEAD_AFTER_MS + 1000,
      ],
    ];
    process.stderr.write("\n");
    for (const [what, target, got, met] of rows) {
      process.stderr.write(
        `${what.padEnd(48)} ${target.padEnd(26)} ${got.padEnd(20)} ${met ? "met" : "NOT MET"}\n`,
      );
    }
    const result = {
      agents: AGENTS,
      tasks: ids.length,
      placed: placedTimes.length,
      placementsPerSec,
      leaderHeartbeatCpuPct,
      deadAgentDetectMs,
      mode: MODE,
      noWorkerServers: servers.noWorker,
      submitMode,
      workerDeadAfterMs: DEAD_AFTER_MS,
      tickMs: Number(args["tick-ms"]),
      electionTicks: Number(args["election-ticks"]),
      heartbeatsPerSec,
      leaderUsPerHeartbeat,
      idleHeartbeatRtt: heartbeatRtt,
      baselineServerCpuPct: baseline.servers,
      idleServerCpuPct: idle.servers,
      idleBenchCpuPct: idle.bench,
      registerMs,
      burstPlacementsPerSec,
      allRunningMs,
      allFinishedMs,
      overloadedRetries: counters.overloaded,
      submitErrors: counters.errors,
      unfinishedTasks: unfinished.count,
      agentsCutOff: f.log.warnings.get(CUT_OFF_WARNING) ?? 0,
      submitServerCpuPct: submit.servers,
      submitBenchCpuPct: submit.bench,
      submitMachineCpuPct: submit.machine,
      peakRssMb: peakRss,
      leader: leader + 1,
      killed: victims.length,
      rescheduleMs,
      duplicateStarts: f.duplicateStarts,
      reportsSent: f.reportsSent,
      reportRequests: f.reportRequests,
      pollAnswers: f.pollAnswers,
      tasksInAnswers: f.tasksInAnswers,
      connectionsOpened: f.connectionsOpened,
      loadAvg: { start: loadAtStart, idle: idleLoad, submit: submitLoad },
    };
    process.stdout.write(`BENCH_JSON ${JSON.stringify(result)}\n`);
  } finally {
    await fleet?.close().catch(() => undefined);
    await servers.stop();
    if (args["keep-dir"] === true) log(`kept ${join(root)}`);
    else cleanupSync();
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    if (args["keep-dir"] !== true) cleanupSync();
    process.exit(130);
  });
}
await main();
