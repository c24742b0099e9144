/**
 * One chaos run, inside the client namespace: starts the nodes, runs the clients, injects the
 * scheduled faults one after another (each healed before the next, with the time from heal to
 * the first write and to full replication measured), heals everything, reads every key, and
 * checks the history: linearizable (the simulator's Porcupine-style checker), no acknowledged
 * write lost, every disk fault handled as promised. Returns the result; never throws for a
 * failed check (the verdict says so).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SeededRandom } from "../../src/common/random.js";
import { checkLinearizable } from "../../src/sim/checkers/linearizability.js";
import type { HistoryOperation } from "../../src/sim/history.js";
import {
  applyFilter,
  breakDisk,
  createDisk,
  fillDisk,
  freeDisk,
  mountDisk,
  unmountDisk,
  type RunNames,
} from "./host.js";
import { ChaosNode, setClockOffset, type NodeStatus } from "./nodes.js";
import { clientHeaders } from "./profile.js";
import { replicated, replicationTarget } from "./replication.js";
import { describeStep, makeSchedule, type FaultKind, type FaultStep } from "./schedule.js";
import { History, runClients, runOperation } from "./workload.js";

/** Options of {@link runChaos}. */
export interface ChaosOptions {
  readonly names: RunNames;
  readonly seed: number;
  readonly seconds: number;
  readonly faults: readonly FaultKind[];
  readonly nodes: number;
  readonly clients: number;
  readonly keys: number;
  readonly diskMiB: number;
  /** If set, every node incarnation's kept output is written here at the end (`node-<id>-<n>.log`). */
  readonly logsDir?: string | undefined;
  /** Progress lines (stderr in the CLI). */
  readonly say: (line: string) => void;
}

/** What one healed fault measured. */
export interface HealMeasure {
  readonly step: string;
  readonly healToWriteMs: number | undefined;
  /** From the heal until every member holds and applied the commit index of the heal. */
  readonly healToReplicationMs: number | undefined;
  /**
   * From the heal until one poll saw every member at the leader's commit index of that moment
   * (a race with the clients' writes; informative only, see replication.ts).
   */
  readonly healToInSyncMs: number | undefined;
  /** The longest stretch of the step (fault and heal) in which no answering node led. */
  readonly worstLeaderlessMs: number;
  /** The step ran under random packet loss (`loss`, `membership`): see {@link LOSSY_KINDS}. */
  readonly lossy: boolean;
  /** A double fault's second fault: from its start to a new leader among the majority. */
  readonly secondFaultToLeaderMs?: number | undefined;
  /** A double fault's second fault: from its start to the first acknowledged write. */
  readonly secondFaultToWriteMs?: number | undefined;
}

/** The result of a run. */
export interface ChaosResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly durationMs: number;
  readonly operations: { ok: number; failed: number; unknown: number };
  readonly faultsByKind: Record<string, number>;
  readonly linearizable: boolean | "inconclusive";
  readonly explanation?: string;
  readonly lostWrites: number;
  readonly lostDetails: string[];
  readonly findings: string[];
  /** Things seen that are not failures of this suite's checks (e.g. a lingering process). */
  readonly notes: string[];
  readonly heals: HealMeasure[];
  readonly worstHealToReplicationMs: number | undefined;
  readonly worstLeaderlessMs: number;
  /** The worst leaderless stretch of a step without packet loss (the issue's 1 s target). */
  readonly worstLeaderlessConnectedMs: number;
  /** The worst leaderless stretch of a step under packet loss (reported apart; see LOSSY_KINDS). */
  readonly worstLeaderlessLossyMs: number;
  readonly steps: string[];
  readonly logTails: string;
  /** The recorded history (for re-checking offline: `--history FILE`). */
  readonly history?: readonly HistoryOperation[];
}

const CLUSTER_ID = "chaos";
/**
 * Fault kinds whose steps run under random packet loss on every link. Their leaderless time is
 * reported apart from the others': under 20–50% loss a TCP link stalls for its retransmission
 * timeout (200 ms at least, doubling when the retransmission is lost too), and the fault runs
 * showed each link silent for a whole second about 15 times a minute at 22–49% loss, against a
 * 250 ms election timeout. Control messages therefore also travel on the pair's other connection
 * and as datagrams (see README, "Fault testing"), which is what keeps these steps' leaderless
 * stretches short; reported apart, a regression there shows as such.
 */
const LOSSY_KINDS: ReadonlySet<FaultKind> = new Set(["loss", "membership"]);
const LIVENESS_DEADLINE_MS = 30_000;
const EIO_EXIT_DEADLINE_MS = 10_000;
/** A liveness probe's write gives up after this and tries the next node (time resolution). */
const PROBE_TIMEOUT_MS = 750;
/** A restarted node must answer its API within this (a loaded 2-core machine takes ~10 s). */
const RESTART_DEADLINE_MS = 30_000;
/** A joining node must be promotable (caught up), and a removal committed, within this. */
const MEMBERSHIP_DEADLINE_MS = 60_000;
/** `node start --join` exits with UNAVAILABLE's code when the cluster did not add it in time. */
const JOIN_GAVE_UP_EXIT_CODE = 15;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(
  deadlineMs: number,
  intervalMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > end) return undefined;
    await sleep(intervalMs);
  }
}

/** The cluster as the run sees it: members by id, slots, and the spare slots. */
class Cluster {
  readonly members = new Map<number, ChaosNode>();
  readonly retired: ChaosNode[] = [];
  nextId: number;
  readonly freeSlots: number[] = [];
  /** Per node slot, the addresses it drops packets from, and the loss percent. */
  readonly blocked = new Map<number, Set<string>>();
  lossPercent = 0;

  constructor(
    readonly names: RunNames,
    readonly size: number,
    readonly clockFiles: boolean,
    /** Every node incarnation created, for the final kill. */
    readonly created: ChaosNode[],
  ) {
    this.nextId = size + 1;
  }

  running(): ChaosNode[] {
    return [...this.members.values()].filter((n) => n.running && !n.paused);
  }

  endpoints(): string[] {
    return [...this.members.values()].map((n) => n.apiUrl);
  }

  newNode(id: number, slot: number): ChaosNode {
    const clockFile = this.clockFiles ? join(this.names.root, `clock-${id}`) : undefined;
    if (clockFile !== undefined) setClockOffset(clockFile, "+0");
    const node = new ChaosNode(this.names, id, slot, clockFile);
    this.created.push(node);
    return node;
  }

  async statuses(): Promise<Map<number, NodeStatus>> {
    const nodes = this.running();
    const answers = await Promise.all(nodes.map((n) => n.status()));
    const map = new Map<number, NodeStatus>();
    nodes.forEach((n, i) => {
      const status = answers[i];
      if (status !== undefined) map.set(n.id, status);
    });
    return map;
  }

  /** The leader as the nodes that answer see it (the highest term's leader), if any. */
  async leader(): Promise<ChaosNode | undefined> {
    const statuses = await this.statuses();
    let best: NodeStatus | undefined;
    for (const status of statuses.values()) {
      if (status.role === "leader" && (best === undefined || status.term > best.term))
        best = status;
    }
    return best === undefined ? undefined : this.members.get(best.id);
  }

  async waitLeader(deadlineMs = 20_000): Promise<ChaosNode | undefined> {
    return until(deadlineMs, 50, () => this.leader());
  }

  filters(): void {
    for (const node of this.members.values()) {
      applyFilter(this.names, this.names.nodeNs(node.slot), {
        blockedFrom: [...(this.blocked.get(node.slot) ?? [])],
        lossPercent: this.lossPercent,
      });
    }
  }

  /** Cuts `from` → `to` (packets of `from` dropped on arrival at `to`). */
  cut(from: ChaosNode, to: ChaosNode): void {
    const set = this.blocked.get(to.slot) ?? new Set<string>();
    set.add(from.address);
    this.blocked.set(to.slot, set);
  }

  healNetwork(): void {
    this.blocked.clear();
    this.lossPercent = 0;
    this.filters();
  }
}

async function api(
  node: ChaosNode,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  try {
    const response = await fetch(`${node.apiUrl}${path}`, {
      method,
      headers: {
        ...clientHeaders(),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(3000),
    });
    const text = await response.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // not JSON
    }
    return { status: response.status, body: parsed };
  } catch (error) {
    return { status: 0, body: { message: (error as Error).message } };
  }
}

/** Runs the chaos run described by `options`; every node it started is killed when it ends. */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const started: ChaosNode[] = [];
  try {
    return await runChaosNodes(options, started);
  } finally {
    await Promise.all(started.map((node) => node.kill()));
    if (options.logsDir !== undefined) writeLogs(options.logsDir, started);
  }
}

async function runChaosNodes(options: ChaosOptions, everyNode: ChaosNode[]): Promise<ChaosResult> {
  const started = performance.now();
  const { names, say } = options;
  const withMembership = options.faults.includes("membership");
  const slots = options.nodes + (withMembership ? 1 : 0);
  // The caller kills every node created here, however the run ends.
  const cluster = new Cluster(names, options.nodes, options.faults.includes("clock"), everyNode);
  for (let slot = 1; slot <= slots; slot++) createDisk(names, slot, options.diskMiB);
  for (let id = 1; id <= options.nodes; id++) cluster.members.set(id, cluster.newNode(id, id));
  if (withMembership) cluster.freeSlots.push(slots);
  const initial = [...cluster.members.values()];
  cluster.filters();
  for (const node of initial) node.start(ChaosNode.bootstrapFlags(node, initial, CLUSTER_ID));

  const history = new History();
  const findings: string[] = [];
  const notes: string[] = [];
  const heals: HealMeasure[] = [];
  const stepsRun: string[] = [];
  const faultsByKind: Record<string, number> = {};
  let worstLeaderlessMs = 0;
  const finish = (extra: Partial<ChaosResult>): ChaosResult => ({
    seed: options.seed,
    ok: false,
    durationMs: Math.round(performance.now() - started),
    operations: { ok: history.ok, failed: history.failed, unknown: history.unknown },
    faultsByKind,
    linearizable: false,
    lostWrites: 0,
    lostDetails: [],
    findings,
    notes,
    heals,
    worstHealToReplicationMs: worst(heals.map((h) => h.healToReplicationMs)),
    worstLeaderlessMs: Math.round(worstLeaderlessMs),
    worstLeaderlessConnectedMs: Math.max(
      0,
      ...heals.filter((h) => !h.lossy).map((h) => h.worstLeaderlessMs),
    ),
    worstLeaderlessLossyMs: Math.max(
      0,
      ...heals.filter((h) => h.lossy).map((h) => h.worstLeaderlessMs),
    ),
    steps: stepsRun,
    logTails: [...cluster.members.values(), ...cluster.retired]
      .map(
        (n) =>
          `----- node ${n.id} (slot ${n.slot}, ${n.running ? "running" : JSON.stringify(n.exit)})\n${n.tail(40)}`,
      )
      .join("\n"),
    history: history.operations,
    ...extra,
  });

  // Generous: starting three nodes on a loaded 2-core machine takes tens of seconds.
  const firstLeader = await cluster.waitLeader(90_000);
  if (firstLeader === undefined) {
    findings.push("no leader was elected at start");
    return finish({});
  }
  say(`leader ${firstLeader.id} elected after ${Math.round(performance.now() - started)} ms`);

  const stopClients = new AbortController();
  const clients = runClients(history, {
    clients: options.clients,
    keys: options.keys,
    random: new SeededRandom(options.seed ^ 0x5eed),
    endpoints: () => cluster.endpoints(),
    signal: stopClients.signal,
  });
  // The leaderless monitor: the longest stretch in which no answering node led.
  let monitoring = true;
  // The step the monitor charges a leaderless stretch to (the step running when it ended).
  let stepLeaderlessMs = 0;
  const monitor = (async () => {
    let since: number | undefined;
    while (monitoring) {
      const leader = await cluster.leader();
      const now = performance.now();
      if (leader === undefined) since ??= now;
      else if (since !== undefined) {
        worstLeaderlessMs = Math.max(worstLeaderlessMs, now - since);
        stepLeaderlessMs = Math.max(stepLeaderlessMs, now - since);
        since = undefined;
      }
      await sleep(100);
    }
  })();

  const schedule = makeSchedule(options.seed, options.faults);
  const deadline = started + options.seconds * 1000;
  let probeCounter = 0;
  const measureHeal = async (
    step: FaultStep,
    healedAt: number,
    second: SecondFault | undefined,
  ): Promise<void> => {
    // What "replicated" must reach: the commit index at the heal (see replication.ts).
    const target = await until(LIVENESS_DEADLINE_MS, 20, async () =>
      replicationTarget(await cluster.statuses()),
    );
    // The write probe and the replication poll run side by side: a probe that waits out its
    // timeout on the node just healed must not delay the replication measure (it did, by up to
    // 750 ms, when they ran one after the other).
    const writing = until(LIVENESS_DEADLINE_MS, 20, async () => {
      const nodes = cluster.running();
      const node = nodes[probeCounter % Math.max(1, nodes.length)];
      if (node === undefined) return undefined;
      const output = await runOperation(
        node.apiUrl,
        { kind: "put", key: `probe-${probeCounter++}`, value: "p" },
        PROBE_TIMEOUT_MS,
      );
      return output !== undefined && output !== "fail" ? performance.now() : undefined;
    });
    // Every member back in replication: holding and applying what was committed at the heal.
    let inSync: number | undefined;
    const replicating = until(LIVENESS_DEADLINE_MS, 20, async () => {
      const members = [...cluster.members.values()];
      if (members.some((n) => !n.running)) return undefined;
      const statuses = await cluster.statuses();
      const ids = members.map((n) => n.id);
      // Seen once, by the way: every member at the leader's commit index of this moment.
      if (inSync === undefined && replicated(statuses, ids, undefined)) inSync = performance.now();
      return replicated(statuses, ids, target) ? performance.now() : undefined;
    });
    const [wrote, replicatedAt] = await Promise.all([writing, replicating]);
    const measure = {
      step: describeStep(step),
      healToWriteMs: wrote === undefined ? undefined : Math.round(wrote - healedAt),
      healToReplicationMs:
        replicatedAt === undefined ? undefined : Math.round(replicatedAt - healedAt),
      healToInSyncMs: inSync === undefined ? undefined : Math.round(inSync - healedAt),
      worstLeaderlessMs: Math.round(stepLeaderlessMs),
      lossy: LOSSY_KINDS.has(step.kind),
      ...(second === undefined ? {} : second),
    };
    heals.push(measure);
    say(
      `  healed: first write after ${measure.healToWriteMs ?? "never"} ms, replicated after ${measure.healToReplicationMs ?? "never"} ms (every member at the moving commit index: ${measure.healToInSyncMs ?? "not seen"}); longest leaderless ${measure.worstLeaderlessMs} ms`,
    );
    if (replicatedAt === undefined)
      findings.push(
        `${describeStep(step)}: not fully replicated within ${LIVENESS_DEADLINE_MS} ms of the heal`,
      );
  };

  for (const step of schedule) {
    // Leave room for the heal's measurement and the final reads.
    if (performance.now() + step.quietMs + step.durationMs + 5000 > deadline) break;
    await sleep(step.quietMs);
    stepsRun.push(describeStep(step));
    say(`${Math.round((performance.now() - started) / 1000)} s: ${describeStep(step)}`);
    faultsByKind[step.kind] = (faultsByKind[step.kind] ?? 0) + 1;
    stepLeaderlessMs = 0;
    const second = await inject(cluster, step, findings, notes, say);
    const healedAt = performance.now();
    // Wall time too, to line the heal up with the nodes' log lines.
    say(`  healed at ${new Date().toISOString()}`);
    await measureHeal(step, healedAt, second);
  }

  stopClients.abort();
  await clients;
  monitoring = false;
  await monitor;

  // Everything healed by now; read every key once more, linearizably, through any node.
  const finals: HistoryOperation[] = [];
  for (let k = 0; k < options.keys; k++) {
    const key = `k${k}`;
    const read = await until(20_000, 100, async () => {
      const nodes = cluster.running();
      const node = nodes[k % Math.max(1, nodes.length)];
      if (node === undefined) return undefined;
      const complete = history.invoke(0, { kind: "get", key });
      const output = await runOperation(node.apiUrl, { kind: "get", key });
      complete(output === "fail" ? undefined : output);
      return output !== undefined && output !== "fail" && output.kind === "get"
        ? output
        : undefined;
    });
    if (read === undefined) findings.push(`key ${key} could not be read at the end`);
    else finals.push(history.operations[history.operations.length - 1] as HistoryOperation);
  }
  const check = checkLinearizable(history.operations);
  const lost = lostWrites(history.operations, finals);
  const linearizable = check.inconclusive && check.ok ? "inconclusive" : check.ok;
  const ok = check.ok && lost.length === 0 && findings.length === 0;
  return finish({
    ok,
    linearizable,
    ...(check.explanation === undefined ? {} : { explanation: check.explanation }),
    lostWrites: lost.length,
    lostDetails: lost.slice(0, 10),
  });
}

/** Writes each node incarnation's kept output to `dir` (for reading a run's logs whole). */
function writeLogs(dir: string, nodes: readonly ChaosNode[]): void {
  mkdirSync(dir, { recursive: true });
  const seen = new Map<number, number>();
  for (const node of nodes) {
    const n = (seen.get(node.id) ?? 0) + 1;
    seen.set(node.id, n);
    writeFileSync(join(dir, `node-${node.id}-${n}.log`), node.output);
  }
}

function worst(values: readonly (number | undefined)[]): number | undefined {
  let result: number | undefined;
  for (const v of values) if (v !== undefined && (result === undefined || v > result)) result = v;
  return result;
}

/**
 * Acknowledged writes the final reads do not reflect: for each key, an acknowledged write w is
 * lost if the final value was written by an operation that completed before w was invoked (it
 * is older than w, so w must have been overwritten by something newer), or the key is absent.
 */
export function lostWrites(
  history: readonly HistoryOperation[],
  finals: readonly HistoryOperation[],
): string[] {
  const lost: string[] = [];
  for (const final of finals) {
    if (final.output?.kind !== "get") continue;
    const key = final.input.key;
    const value = final.output.value;
    const writes = history.filter(
      (op) => op.input.key === key && op.input.kind !== "get" && op.client !== 0,
    );
    const writer = writes.find(
      (op) => op.input.kind !== "get" && "value" in op.input && op.input.value === value,
    );
    for (const op of writes) {
      const acked =
        op.output !== undefined &&
        (op.output.kind === "put" || (op.output.kind === "cas" && op.output.succeeded));
      if (!acked) continue;
      if (value === null || (writer !== undefined && writer.completeStamp < op.invokeStamp)) {
        lost.push(
          `key ${key}: acknowledged write #${op.id} (${"value" in op.input ? op.input.value : ""}) lost; final value ${value ?? "absent"}`,
        );
      }
    }
  }
  return lost;
}

/** Picks among `nodes` with the step's pick. */
function pick<T>(nodes: readonly T[], step: FaultStep, offset = 0): T {
  return nodes[(step.pick + offset) % nodes.length] as T;
}

async function followers(
  cluster: Cluster,
): Promise<{ leader: ChaosNode | undefined; followers: ChaosNode[] }> {
  const leader = await cluster.waitLeader(5000);
  const all = [...cluster.members.values()].filter((n) => n.running);
  return { leader, followers: all.filter((n) => n !== leader) };
}

/** What a double fault measured about its second fault. */
interface SecondFault {
  readonly secondFaultToLeaderMs: number | undefined;
  readonly secondFaultToWriteMs: number | undefined;
}

/** Cuts `target` off from every other member both ways. */
function isolate(cluster: Cluster, target: ChaosNode): void {
  for (const other of cluster.members.values()) {
    if (other === target) continue;
    cluster.cut(target, other);
    cluster.cut(other, target);
  }
  cluster.filters();
}

/** From now until a node of `among` leads in a term above `aboveTerm` (ms), within 30 s. */
async function timeToLeader(
  cluster: Cluster,
  among: readonly ChaosNode[],
  aboveTerm: number,
): Promise<number | undefined> {
  const t0 = performance.now();
  const at = await until(LIVENESS_DEADLINE_MS, 20, async () => {
    const statuses = await Promise.all(among.map((n) => n.status(500)));
    return statuses.some((s) => s?.role === "leader" && s.term > aboveTerm)
      ? performance.now()
      : undefined;
  });
  return at === undefined ? undefined : Math.round(at - t0);
}

/** From now until a write through one of `among` is acknowledged (ms), within 30 s. */
async function timeToWrite(among: readonly ChaosNode[]): Promise<number | undefined> {
  const t0 = performance.now();
  let counter = 0;
  const at = await until(LIVENESS_DEADLINE_MS, 20, async () => {
    const node = among[counter % among.length] as ChaosNode;
    const output = await runOperation(
      node.apiUrl,
      { kind: "put", key: `second-${counter++}`, value: "s" },
      PROBE_TIMEOUT_MS,
    );
    return output !== undefined && output !== "fail" ? performance.now() : undefined;
  });
  return at === undefined ? undefined : Math.round(at - t0);
}

/**
 * The issue's double faults: a long partition, healed, then a second fault inside the window
 * in which stale links used to stall the cluster although a majority could talk.
 */
async function injectDouble(
  cluster: Cluster,
  step: FaultStep,
  say: (line: string) => void,
): Promise<SecondFault> {
  const { leader, followers: others } = await followers(cluster);
  const all = [...cluster.members.values()];
  if (step.variant === "isolate-leader-then-new-leader") {
    const first = leader ?? pick(all, step);
    say(`  isolate leader ${first.id} for ${step.durationMs} ms`);
    isolate(cluster, first);
    await sleep(step.durationMs);
    cluster.healNetwork();
    await sleep(1000);
    const current = (await cluster.leader()) ?? first;
    const term = (await current.status())?.term ?? 0;
    const majority = all.filter((n) => n !== current);
    say(`  healed; 1 s later isolate the new leader ${current.id} (term ${term})`);
    isolate(cluster, current);
    const [toLeader, toWrite] = await Promise.all([
      timeToLeader(cluster, majority, term),
      timeToWrite(majority),
    ]);
    say(
      `  second fault: leader after ${toLeader ?? "never"} ms, write after ${toWrite ?? "never"} ms`,
    );
    await sleep(3000);
    cluster.healNetwork();
    return { secondFaultToLeaderMs: toLeader, secondFaultToWriteMs: toWrite };
  }
  // isolate-follower-then-kill-other
  const victim = others.length > 0 ? pick(others, step) : pick(all, step);
  say(`  isolate follower ${victim.id} for ${step.durationMs} ms`);
  isolate(cluster, victim);
  await sleep(step.durationMs);
  cluster.healNetwork();
  await sleep(500);
  const other = all.find((n) => n !== victim && n !== leader) ?? victim;
  say(`  healed; 0.5 s later kill -9 the other follower ${other.id}`);
  await other.kill();
  const toWrite = await timeToWrite(all.filter((n) => n !== other));
  say(`  second fault: write after ${toWrite ?? "never"} ms`);
  await sleep(2000);
  other.start(undefined);
  return { secondFaultToLeaderMs: undefined, secondFaultToWriteMs: toWrite };
}

/** Injects `step`'s fault, keeps it for its duration, and heals it. */
async function inject(
  cluster: Cluster,
  step: FaultStep,
  findings: string[],
  notes: string[],
  say: (line: string) => void,
): Promise<SecondFault | undefined> {
  if (step.kind === "double") return injectDouble(cluster, step, say);
  const { leader, followers: others } = await followers(cluster);
  const all = [...cluster.members.values()];
  const target = step.variant.includes("leader")
    ? (leader ?? pick(all, step))
    : step.variant === "random" || others.length === 0
      ? pick(all, step)
      : pick(others, step);
  const minority = Math.floor((all.length - 1) / 2);
  switch (step.kind) {
    case "kill": {
      const victims =
        step.variant === "minority"
          ? [target, ...others.filter((n) => n !== target)].slice(0, minority)
          : [target];
      say(`  kill -9 node ${victims.map((n) => n.id).join(", ")}`);
      for (const v of victims) await v.kill();
      await sleep(step.durationMs);
      for (const v of victims) v.start(undefined);
      return;
    }
    case "stop": {
      say(`  SIGSTOP node ${target.id}`);
      target.signal("SIGSTOP");
      await sleep(step.durationMs);
      target.signal("SIGCONT");
      return;
    }
    case "long-partition":
    case "partition": {
      const rest = all.filter((n) => n !== target);
      if (step.variant === "majority-minority" && all.length >= 5) {
        const small = [target, ...rest].slice(0, minority);
        const large = all.filter((n) => !small.includes(n));
        for (const a of small)
          for (const b of large) {
            cluster.cut(a, b);
            cluster.cut(b, a);
          }
        say(`  partition ${small.map((n) => n.id)} | ${large.map((n) => n.id)}`);
      } else if (step.variant === "bridge" && all.length >= 3) {
        // The target talks to everyone; the others are split in two halves that only it joins.
        const half = Math.ceil(rest.length / 2);
        const left = rest.slice(0, half);
        const right = rest.slice(half);
        for (const a of left)
          for (const b of right) {
            cluster.cut(a, b);
            cluster.cut(b, a);
          }
        say(
          `  bridge through node ${target.id}: ${left.map((n) => n.id)} | ${right.map((n) => n.id)}`,
        );
      } else if (step.variant === "one-way") {
        for (const b of rest) cluster.cut(b, target); // target hears nobody, everybody hears it
        say(`  one-way: node ${target.id} receives nothing from the others`);
      } else {
        for (const b of rest) {
          cluster.cut(target, b);
          cluster.cut(b, target);
        }
        say(`  isolate node ${target.id}`);
      }
      cluster.filters();
      await sleep(step.durationMs);
      cluster.healNetwork();
      return;
    }
    case "loss": {
      cluster.lossPercent = step.amount;
      say(`  ${step.amount}% loss on every link between nodes`);
      cluster.filters();
      await sleep(step.durationMs);
      cluster.healNetwork();
      return;
    }
    case "disk-full": {
      say(`  fill the disk of node ${target.id}`);
      fillDisk(cluster.names, target.slot);
      await sleep(step.durationMs);
      const stillRunning = target.running;
      freeDisk(cluster.names, target.slot);
      if (!stillRunning) {
        findings.push(
          `${describeStep(step)}: node ${target.id} exited on a full disk (${JSON.stringify(target.exit)}): ${target.tail(3)}`,
        );
        target.start(undefined);
      } else if (!target.output.includes("storage full")) {
        say(`  (node ${target.id} did not need to write while its disk was full)`);
      }
      return;
    }
    case "eio": {
      say(`  fail the disk of node ${target.id} (ext4 shutdown: EIO)`);
      breakDisk(cluster.names, target.slot);
      const t0 = performance.now();
      const exited = await target.waitExit(EIO_EXIT_DEADLINE_MS);
      if (!exited) {
        // Stopped serving on the fatal error but the process lingers: exiting on a fatal error
        // is the process's job (a separate change); what this suite checks is that the node
        // did not go on as if the data were durable.
        if (/node failed.*failed \(EIO\)/.test(target.output)) {
          say(`  node ${target.id} stopped on EIO but its process did not exit; killing it`);
          notes.push(
            `node ${target.id} stopped on EIO (${describeStep(step)}) but its process lingered`,
          );
        } else {
          findings.push(
            `${describeStep(step)}: node ${target.id} did not stop within ${EIO_EXIT_DEADLINE_MS} ms of its disk failing`,
          );
        }
        await target.kill();
      } else {
        say(
          `  node ${target.id} stopped after ${Math.round(performance.now() - t0)} ms: ${JSON.stringify(target.exit)}`,
        );
        if (target.exit?.code === 0)
          findings.push(`${describeStep(step)}: node ${target.id} exited 0 after its disk failed`);
      }
      await sleep(step.durationMs);
      unmountDisk(cluster.names, target.slot);
      mountDisk(cluster.names, target.slot);
      target.start(undefined);
      // Its log must be intact: a restart that fails (STORAGE_CORRUPT) is a finding.
      const up = await until(RESTART_DEADLINE_MS, 100, async () =>
        (await target.status()) !== undefined ? true : undefined,
      );
      if (up === undefined)
        findings.push(
          `${describeStep(step)}: node ${target.id} did not come back after its disk was repaired: ${target.tail(5)}`,
        );
      return;
    }
    case "clock": {
      const offset = step.variant === "forward" ? `+${step.amount}` : `-${step.amount}`;
      if (target.clockFile === undefined) return;
      say(`  node ${target.id}'s clock jumps ${offset} s`);
      setClockOffset(target.clockFile, offset);
      await sleep(step.durationMs);
      setClockOffset(target.clockFile, "+0");
      // Node aborts ("Assertion failed: (now) >= (timer_base())") if its monotonic clock goes
      // back; the suite only steps the wall clock, and a node that died anyway is a finding.
      if (!target.running) {
        findings.push(
          `${describeStep(step)}: node ${target.id} exited during a clock jump (${JSON.stringify(target.exit)}): ${target.tail(5)}`,
        );
        target.start(undefined);
      }
      return;
    }
    case "membership": {
      await replaceFollower(cluster, step, findings, say);
      return;
    }
  }
  return undefined;
}

/**
 * Replaces a follower under 20% loss on every link, as an operator would: a fresh node joins
 * as a learner (`--join`), is promoted once it has caught up, and only then is the follower
 * removed, so the cluster never has fewer voters than it started with.
 */
async function replaceFollower(
  cluster: Cluster,
  step: FaultStep,
  findings: string[],
  say: (line: string) => void,
): Promise<void> {
  cluster.lossPercent = 20;
  cluster.filters();
  try {
    const { leader, followers: others } = await followers(cluster);
    const slot = cluster.freeSlots.shift();
    if (leader === undefined || others.length === 0 || slot === undefined) {
      findings.push(`${describeStep(step)}: no leader or follower to replace`);
      if (slot !== undefined) cluster.freeSlots.push(slot);
      return;
    }
    const victim = pick(others, step);
    const fresh = cluster.newNode(cluster.nextId++, slot);
    fresh.wipe();
    say(`  node ${fresh.id} joins in slot ${slot} to replace node ${victim.id}`);
    fresh.start(
      ChaosNode.joinFlags(fresh, ((await cluster.leader()) ?? leader).apiUrl, CLUSTER_ID),
    );
    cluster.members.set(fresh.id, fresh);
    let crashed: string | undefined;
    const promoted = await until(MEMBERSHIP_DEADLINE_MS, 250, async () => {
      if (!fresh.running && crashed === undefined) {
        // A join that gave up says so with UNAVAILABLE (exit 15) and may be tried again, as an
        // operator would; any other exit is a finding, with enough of the log for a stack.
        if (fresh.exit?.code === JOIN_GAVE_UP_EXIT_CODE) {
          say(`  node ${fresh.id}'s join gave up (UNAVAILABLE); starting it again`);
          fresh.wipe();
          fresh.start(
            ChaosNode.joinFlags(fresh, ((await cluster.leader()) ?? leader).apiUrl, CLUSTER_ID),
          );
        } else {
          crashed = `exited ${JSON.stringify(fresh.exit)} before its promotion: ${fresh.tail(30)}`;
        }
      }
      if (crashed !== undefined) return false;
      const current = (await cluster.leader()) ?? leader;
      const answer = await api(current, "POST", `/v1/cluster/members/${fresh.id}/promote`);
      return answer.status === 200 ? true : undefined;
    });
    if (promoted !== true) {
      findings.push(
        `${describeStep(step)}: node ${fresh.id} ${crashed ?? `was not promoted within ${MEMBERSHIP_DEADLINE_MS} ms: ${fresh.tail(10)}`}`,
      );
      // Take the attempt back (remove it if it got in), so later steps measure the cluster.
      await until(MEMBERSHIP_DEADLINE_MS, 200, async () => {
        const current = (await cluster.leader()) ?? leader;
        const answer = await api(current, "DELETE", `/v1/cluster/members/${fresh.id}`);
        return answer.status >= 200 && answer.status < 500 ? true : undefined;
      });
      await fresh.kill();
      cluster.members.delete(fresh.id);
      cluster.retired.push(fresh);
      fresh.wipe();
      cluster.freeSlots.push(slot);
      return;
    }
    say(`  node ${fresh.id} promoted; removing node ${victim.id}`);
    const removed = await until(MEMBERSHIP_DEADLINE_MS, 200, async () => {
      const current = (await cluster.leader()) ?? leader;
      const answer = await api(current, "DELETE", `/v1/cluster/members/${victim.id}`);
      return answer.status === 200 ? true : undefined;
    });
    if (removed === undefined) {
      findings.push(`${describeStep(step)}: could not remove node ${victim.id}`);
      return;
    }
    await victim.kill();
    cluster.members.delete(victim.id);
    cluster.retired.push(victim);
    victim.wipe();
    cluster.freeSlots.push(victim.slot);
    await sleep(step.durationMs);
  } finally {
    cluster.healNetwork();
  }
}
