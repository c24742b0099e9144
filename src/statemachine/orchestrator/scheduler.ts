/**
 * The scheduler: a pure, deterministic function from the replicated state and a request to a
 * placement. `apply` calls it on every replica, so every replica places the same work on the
 * same worker and there are no plan conflicts to resolve.
 *
 * **Feasibility** (in this order, which is also the order the pending reason reports): the
 * worker is `online` (not draining, not offline); its features include every required one; no
 * VM of the request's anti-affinity group is placed on it; its free capacity (capacity −
 * allocated) covers the request in every dimension. A feasible placement therefore never
 * over-commits a worker.
 *
 * **Ranking.** A worker's score is its free fraction after placement, summed over the
 * dimensions: Σ (capacity − allocated − request) / capacity, a dimension the worker has none of
 * counting as full (0). `binpack` (the default) picks the lowest score, i.e. the worker left
 * fullest, which keeps whole workers free for big requests; `spread` picks the highest. The sum
 * weighs the dimensions equally and still sees a worker full in one dimension but empty in the
 * others, which a max would hide. Scores are compared exactly (as fractions in `bigint`), so a
 * tie is a true tie and goes to the lowest node id; the answer never depends on the order the
 * workers are given in.
 */
import type { NodeId } from "../../raft/types.js";
import { RAW_EXEC_FEATURE, RAW_EXEC_HINT } from "./features.js";
import {
  RESOURCE_DIMENSIONS,
  describeAmount,
  describeResources,
  fitsWithin,
  subtractResources,
} from "./resources.js";
import type { PlacementStrategy, Resources, Worker } from "./types.js";

/** What a task or VM asks of its worker. */
export interface PlacementRequest {
  readonly resources: Resources;
  /** Features the worker must offer (the implicit `raw_exec` or `qemu` included). */
  readonly requiredFeatures: readonly string[];
  /** VMs sharing a non-empty group never share a worker; empty means none. */
  readonly antiAffinityGroup: string;
}

/** The replicated state placement reads. */
export interface PlacementState {
  /** Every registered worker, in any order, with its current allocation. */
  readonly workers: Iterable<Worker>;
  /** For each anti-affinity group, the nodes that hold a placed VM of it. */
  readonly groupNodes: ReadonlyMap<string, ReadonlySet<NodeId>>;
  readonly strategy: PlacementStrategy;
}

/** Where to place the work, or why it cannot be placed now. */
export type PlacementDecision =
  | { readonly placed: true; readonly nodeId: NodeId }
  | { readonly placed: false; readonly reason: string };

/** A score as an exact fraction `numerator / denominator` (denominator > 0). */
export interface Score {
  readonly numerator: bigint;
  readonly denominator: bigint;
}

/** The free fraction of `worker` after placing `request` on it, summed over the dimensions. */
export function freeFractionAfter(worker: Worker, request: Resources): Score {
  const free = subtractResources(subtractResources(worker.capacity, worker.allocated), request);
  let numerator = 0n;
  let denominator = 1n;
  for (const dimension of RESOURCE_DIMENSIONS) {
    const capacity = BigInt(worker.capacity[dimension]);
    if (capacity === 0n) continue;
    // a/b + c/d = (a·d + c·b) / (b·d)
    numerator = numerator * capacity + BigInt(free[dimension]) * denominator;
    denominator *= capacity;
  }
  return { numerator, denominator };
}

/** Negative, zero or positive as `a` is below, equal to or above `b`. */
export function compareScores(a: Score, b: Score): number {
  const left = a.numerator * b.denominator;
  const right = b.numerator * a.denominator;
  return left < right ? -1 : left > right ? 1 : 0;
}

function hasFeatures(worker: Worker, required: readonly string[]): boolean {
  return required.every((feature) => worker.features.includes(feature));
}

/** The most free of one dimension among the candidates, and where (lowest node id on a tie). */
export interface MostFree {
  amount: number;
  nodeId: NodeId;
}

/**
 * Chooses the worker for `request`, or explains which constraint no worker meets. Pure and
 * deterministic: the same state and request always give the same decision. Throws nothing.
 *
 * This is the reference implementation: it scans every worker, O(workers) per placement. The
 * model places through the placement index (`placement-index.ts`), which must decide exactly
 * as this does (the tests compare them); the benches run both.
 */
export function choosePlacement(
  request: PlacementRequest,
  state: PlacementState,
): PlacementDecision {
  const groupNodes =
    request.antiAffinityGroup === "" ? undefined : state.groupNodes.get(request.antiAffinityGroup);
  let registered = 0;
  let draining = 0;
  let offline = 0;
  const online: Worker[] = [];
  let withFeatures = 0;
  let candidates = 0;
  const mostFree = new Map<keyof Resources, MostFree>();
  let best: { worker: Worker; score: Score } | undefined;

  for (const worker of state.workers) {
    registered++;
    if (worker.status !== "online") {
      if (worker.status === "draining" || worker.status === "drained") draining++;
      else offline++;
      continue;
    }
    online.push(worker);
    if (!hasFeatures(worker, request.requiredFeatures)) continue;
    withFeatures++;
    if (groupNodes?.has(worker.nodeId) === true) continue;
    candidates++;
    const free = subtractResources(worker.capacity, worker.allocated);
    for (const dimension of RESOURCE_DIMENSIONS) {
      const current = mostFree.get(dimension);
      const amount = free[dimension];
      if (
        current === undefined ||
        amount > current.amount ||
        (amount === current.amount && worker.nodeId < current.nodeId)
      ) {
        mostFree.set(dimension, { amount, nodeId: worker.nodeId });
      }
    }
    if (!fitsWithin(request.resources, free)) continue;
    const score = freeFractionAfter(worker, request.resources);
    if (best === undefined) {
      best = { worker, score };
      continue;
    }
    const order = compareScores(score, best.score);
    const better = state.strategy === "spread" ? order > 0 : order < 0;
    if (better || (order === 0 && worker.nodeId < best.worker.nodeId)) best = { worker, score };
  }

  if (best !== undefined) return { placed: true, nodeId: best.worker.nodeId };
  return {
    placed: false,
    reason: explainUnplaced(
      request,
      {
        registered,
        draining,
        offline,
        onlineCount: online.length,
        offersFeature: (feature) => online.some((worker) => worker.features.includes(feature)),
        withFeatures,
        candidates,
      },
      mostFree,
    ),
  };
}

/** How many workers passed each step of the feasibility order. */
export interface Funnel {
  readonly registered: number;
  /** Draining or drained. */
  readonly draining: number;
  readonly offline: number;
  readonly onlineCount: number;
  /** True if some online worker offers `feature`. */
  readonly offersFeature: (feature: string) => boolean;
  /** Online workers with every required feature. */
  readonly withFeatures: number;
  /** Those of them that hold no VM of the request's anti-affinity group. */
  readonly candidates: number;
}

/**
 * The first constraint of the feasibility order that no worker met, in words; `mostFree` is per
 * dimension among the candidates. Shared by the scan and the index so both say the same thing.
 * Throws nothing.
 */
export function explainUnplaced(
  request: PlacementRequest,
  funnel: Funnel,
  mostFree: ReadonlyMap<keyof Resources, MostFree>,
): string {
  if (funnel.registered === 0) return "no worker is registered";
  if (funnel.onlineCount === 0) {
    return `no worker is online (${funnel.draining} draining, ${funnel.offline} offline)`;
  }
  if (funnel.withFeatures === 0) {
    const missing = request.requiredFeatures.filter((feature) => !funnel.offersFeature(feature));
    // Without the node's own raw_exec nothing raw can run: say how to get it.
    const hint = missing.includes(RAW_EXEC_FEATURE) ? ` (${RAW_EXEC_HINT})` : "";
    return missing.length > 0
      ? `no online worker has feature${missing.length > 1 ? "s" : ""} ${missing.join(", ")}${hint}`
      : `no online worker has all of the features ${request.requiredFeatures.join(", ")}`;
  }
  if (funnel.candidates === 0) {
    // raw_exec is implied by every raw request: not worth naming here.
    const explicit = request.requiredFeatures.filter((feature) => feature !== RAW_EXEC_FEATURE);
    const which = explicit.length > 0 ? " with the required features" : "";
    return `every online worker${which} already holds a VM of anti-affinity group ${request.antiAffinityGroup}`;
  }
  const short: string[] = [];
  for (const dimension of RESOURCE_DIMENSIONS) {
    const most = mostFree.get(dimension);
    if (most !== undefined && request.resources[dimension] > most.amount) {
      short.push(
        `no worker has ${describeAmount(dimension, request.resources[dimension])} free ` +
          `(most free: ${most.amount} on node ${most.nodeId})`,
      );
    }
  }
  if (short.length > 0) return short.join("; ");
  return (
    `no single worker has ${describeResources(request.resources)} free at once ` +
    `(${funnel.candidates} candidate worker${funnel.candidates > 1 ? "s" : ""})`
  );
}
