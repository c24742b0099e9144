/**
 * The placement index: the scheduler's decision (`scheduler.ts`) without scanning every worker.
 * Private to the orchestrator folder; `state.ts` keeps it in step with every worker change, and
 * it is derived state (rebuilt by restoring a snapshot, never encoded).
 *
 * Online workers are grouped in buckets of equal capacity and equal features. Within a bucket
 * the score Σ (free_d − request_d) / capacity_d differs between workers only by the exact integer
 * `key` = Σ free_d × (P / capacity_d), P the product of the bucket's non-zero capacities, so a
 * bucket is one {@link CapacityTree} in (key, node id) order: binpack's choice in the bucket is the
 * first worker that fits, spread's the one of highest key that fits (lowest node id on a tie).
 * The buckets that offer the required features each give their choice, and those few are ranked
 * by the exact score, then node id, as the scan ranks every worker. So a placement costs
 * O(B · log n) for B buckets (a handful in a real fleet: one per machine type), not O(n).
 *
 * When nothing fits, the pending reason is built from counters kept per status and per feature
 * and from the trees' per-subtree maxima, with the scan's own wording (`explainUnplaced`). Only
 * an anti-affinity group with VMs in a bucket makes that bucket's "most free" a walk over it.
 */
import type { NodeId } from "../../raft/types.js";
import { CapacityTree, TreeNode, type TreeKey } from "./capacity-tree.js";
import { RESOURCE_DIMENSIONS } from "./resources.js";
import {
  compareScores,
  explainUnplaced,
  freeFractionAfter,
  type MostFree,
  type PlacementDecision,
  type PlacementRequest,
  type Score,
} from "./scheduler.js";
import type { PlacementStrategy, Resources, Worker } from "./types.js";

/** The most feature sets whose matching buckets are remembered (cleared past it). */
const MAX_CACHED_FEATURE_SETS = 1024;

/** Online workers of one capacity and one feature set. */
interface Bucket {
  readonly key: string;
  readonly features: ReadonlySet<string>;
  /** key = Σ free_d × weight_d, in numbers when that stays exact, else in bigints. */
  readonly weights: readonly number[] | undefined;
  readonly bigWeights: readonly bigint[];
  readonly tree: CapacityTree;
}

/** One online worker's place in the index. */
interface Entry {
  worker: Worker;
  readonly node: TreeNode;
  bucket: Bucket;
}

interface Matching {
  readonly list: readonly Bucket[];
  readonly set: ReadonlySet<Bucket>;
}

function bucketKey(worker: Worker): string {
  const { cpuMillis, memoryMb, diskGb } = worker.capacity;
  return `${cpuMillis},${memoryMb},${diskGb}|${worker.features.join(",")}`;
}

function newBucket(key: string, worker: Worker): Bucket {
  const capacities = RESOURCE_DIMENSIONS.map((dimension) => BigInt(worker.capacity[dimension]));
  const product = capacities.reduce((p, c) => (c === 0n ? p : p * c), 1n);
  const bigWeights = capacities.map((c) => (c === 0n ? 0n : product / c));
  // Each term is at most P (free ≤ capacity), so the sum is at most 3P.
  const exact = product * 3n <= BigInt(Number.MAX_SAFE_INTEGER);
  return {
    key,
    features: new Set(worker.features),
    weights: exact ? bigWeights.map(Number) : undefined,
    bigWeights,
    tree: new CapacityTree(),
  };
}

/** Writes `worker`'s free amounts and key into its (unlinked) tree node. */
function fillNode(node: TreeNode, bucket: Bucket, worker: Worker): void {
  const { capacity, allocated } = worker;
  node.free[0] = capacity.cpuMillis - allocated.cpuMillis;
  node.free[1] = capacity.memoryMb - allocated.memoryMb;
  node.free[2] = capacity.diskGb - allocated.diskGb;
  const weights = bucket.weights;
  let key: TreeKey;
  if (weights !== undefined) {
    key =
      node.free[0] * (weights[0] as number) +
      node.free[1] * (weights[1] as number) +
      node.free[2] * (weights[2] as number);
  } else {
    const big = bucket.bigWeights;
    key =
      BigInt(node.free[0]) * (big[0] as bigint) +
      BigInt(node.free[1]) * (big[1] as bigint) +
      BigInt(node.free[2]) * (big[2] as bigint);
  }
  node.key = key;
}

function isDraining(worker: Worker): boolean {
  return worker.status === "draining" || worker.status === "drained";
}

/** See the module comment. */
export class PlacementIndex {
  readonly #buckets = new Map<string, Bucket>();
  readonly #entries = new Map<NodeId, Entry>();
  readonly #featureCounts = new Map<string, number>();
  #matching = new Map<string, Matching>();
  #registered = 0;
  #draining = 0;
  #offline = 0;
  /** The request being placed, as free amounts per dimension (reused). */
  readonly #need: [number, number, number] = [0, 0, 0];

  /**
   * Moves a worker from `previous` (undefined: not registered before) to `next`. Call it with
   * every new value of every worker. Throws nothing.
   */
  update(previous: Worker | undefined, next: Worker): void {
    if (previous === undefined) {
      this.#registered++;
      this.#count(next, 1);
    } else if (previous.status !== next.status || previous.features !== next.features) {
      this.#count(previous, -1);
      this.#count(next, 1);
    }
    const entry = this.#entries.get(next.nodeId);
    const online = next.status === "online";
    // Allocation changes keep the capacity and features objects: no key to build then.
    const sameBucket =
      entry !== undefined &&
      ((previous?.capacity === next.capacity && previous.features === next.features) ||
        bucketKey(next) === entry.bucket.key);
    if (entry !== undefined && online && sameBucket) {
      // The common case, an allocation change: relink in the same bucket.
      entry.bucket.tree.remove(entry.node);
      entry.worker = next;
      fillNode(entry.node, entry.bucket, next);
      entry.bucket.tree.insert(entry.node);
      return;
    }
    if (entry !== undefined) this.#unlink(entry);
    if (online) this.#link(next, entry?.node ?? new TreeNode(next.nodeId));
  }

  /** The scheduler's decision for `request`, exactly as `choosePlacement` would make it. */
  choose(
    request: PlacementRequest,
    groupNodes: ReadonlyMap<string, ReadonlySet<NodeId>>,
    strategy: PlacementStrategy,
  ): PlacementDecision {
    const need = this.#need;
    need[0] = request.resources.cpuMillis;
    need[1] = request.resources.memoryMb;
    need[2] = request.resources.diskGb;
    const excluded =
      request.antiAffinityGroup === "" ? undefined : groupNodes.get(request.antiAffinityGroup);
    const matching = this.#matchingBuckets(request.requiredFeatures);
    let best: TreeNode | undefined;
    let bestScore: Score | undefined;
    for (const bucket of matching.list) {
      const found =
        strategy === "spread"
          ? bucket.tree.highest(need, excluded)
          : bucket.tree.first(need, excluded);
      if (found === null) continue;
      if (best === undefined) {
        best = found;
        continue;
      }
      bestScore ??= this.#score(best, request.resources);
      const score = this.#score(found, request.resources);
      const order = compareScores(score, bestScore);
      const better = strategy === "spread" ? order > 0 : order < 0;
      if (better || (order === 0 && found.nodeId < best.nodeId)) {
        best = found;
        bestScore = score;
      }
    }
    if (best !== undefined) return { placed: true, nodeId: best.nodeId };
    return { placed: false, reason: this.#explain(request, matching, excluded) };
  }

  #score(node: TreeNode, request: Resources): Score {
    return freeFractionAfter((this.#entries.get(node.nodeId) as Entry).worker, request);
  }

  #count(worker: Worker, delta: number): void {
    if (worker.status === "offline") this.#offline += delta;
    else if (isDraining(worker)) this.#draining += delta;
    if (worker.status !== "online") return;
    for (const feature of worker.features) {
      const count = (this.#featureCounts.get(feature) ?? 0) + delta;
      if (count === 0) this.#featureCounts.delete(feature);
      else this.#featureCounts.set(feature, count);
    }
  }

  #link(worker: Worker, node: TreeNode): void {
    const key = bucketKey(worker);
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = newBucket(key, worker);
      this.#buckets.set(key, bucket);
      this.#matching = new Map();
    }
    fillNode(node, bucket, worker);
    bucket.tree.insert(node);
    this.#entries.set(worker.nodeId, { worker, node, bucket });
  }

  #unlink(entry: Entry): void {
    entry.bucket.tree.remove(entry.node);
    this.#entries.delete(entry.node.nodeId);
    if (entry.bucket.tree.size === 0) {
      this.#buckets.delete(entry.bucket.key);
      this.#matching = new Map();
    }
  }

  /** The buckets whose features include every required one (remembered per feature set). */
  #matchingBuckets(required: readonly string[]): Matching {
    const key = required.join(",");
    let matching = this.#matching.get(key);
    if (matching === undefined) {
      const list = [...this.#buckets.values()].filter((bucket) =>
        required.every((feature) => bucket.features.has(feature)),
      );
      matching = { list, set: new Set(list) };
      if (this.#matching.size >= MAX_CACHED_FEATURE_SETS) this.#matching = new Map();
      this.#matching.set(key, matching);
    }
    return matching;
  }

  /** Why nothing fits, in the scan's words (see `explainUnplaced`). */
  #explain(
    request: PlacementRequest,
    matching: Matching,
    excluded: ReadonlySet<NodeId> | undefined,
  ): string {
    let withFeatures = 0;
    for (const bucket of matching.list) withFeatures += bucket.tree.size;
    // Buckets holding excluded workers: their "most free" must leave those out.
    const touched = new Set<Bucket>();
    let excludedCandidates = 0;
    for (const nodeId of excluded ?? []) {
      const entry = this.#entries.get(nodeId);
      if (entry === undefined || !matching.set.has(entry.bucket)) continue;
      excludedCandidates++;
      touched.add(entry.bucket);
    }
    const mostFree = new Map<keyof Resources, MostFree>();
    const offer = (dimension: number, amount: number, nodeId: NodeId): void => {
      const name = RESOURCE_DIMENSIONS[dimension] as keyof Resources;
      const current = mostFree.get(name);
      if (
        current === undefined ||
        amount > current.amount ||
        (amount === current.amount && nodeId < current.nodeId)
      ) {
        mostFree.set(name, { amount, nodeId });
      }
    };
    for (const bucket of matching.list) {
      if (touched.has(bucket)) {
        bucket.tree.forEach((node) => {
          if (excluded?.has(node.nodeId) === true) return;
          for (let d = 0; d < 3; d++) offer(d, node.free[d] as number, node.nodeId);
        });
        continue;
      }
      const root = bucket.tree.root;
      if (root === null) continue;
      for (let d = 0; d < 3; d++) {
        offer(d, root.maxFree[d] as number, root.maxFreeNode[d] as number);
      }
    }
    return explainUnplaced(
      request,
      {
        registered: this.#registered,
        draining: this.#draining,
        offline: this.#offline,
        onlineCount: this.#entries.size,
        offersFeature: (feature) => this.#featureCounts.has(feature),
        withFeatures,
        candidates: withFeatures - excludedCandidates,
      },
      mostFree,
    );
  }
}
