/**
 * An ordered set of workers of one placement bucket (same capacity, same features), for the
 * placement index (`placement-index.ts`). Private to the orchestrator folder.
 *
 * Workers are kept in ascending (`key`, node id) order, where `key` orders them exactly as the
 * scheduler's score does within the bucket (see `placement-index.ts`). The tree is a treap whose
 * priorities come from a hash of the node id (deterministic: no randomness in the core), and each
 * node also holds, for its subtree, the most free of each resource dimension and the lowest node
 * id that has it. A query walks in key order and skips every subtree whose most-free amounts
 * cannot cover the request, so finding the first worker that fits costs O(log n) when the
 * workers that do not fit are full in the same dimension as their neighbours (the usual case),
 * and never more than O(n). The answer is a function of the set of workers alone (the order is
 * total), never of the tree's shape, so every replica gets the same one.
 *
 * Nodes are allocated once per worker and reused: an update unlinks the node, changes it and
 * links it again.
 */
import type { NodeId } from "../../raft/types.js";

/** A position in the tree's order: an exact integer score key (number when safe, else bigint). */
export type TreeKey = number | bigint;

/** One worker in a {@link CapacityTree}. Fields are the tree's: change them only while unlinked. */
export class TreeNode {
  key: TreeKey = 0;
  /** Free capacity per dimension (cpu, memory, disk). */
  readonly free: [number, number, number] = [0, 0, 0];
  left: TreeNode | null = null;
  right: TreeNode | null = null;
  /** The most free per dimension in this subtree, and the lowest node id holding it. */
  readonly maxFree: [number, number, number] = [0, 0, 0];
  readonly maxFreeNode: [number, number, number] = [0, 0, 0];
  readonly priority: number;

  constructor(readonly nodeId: NodeId) {
    this.priority = hashNodeId(nodeId);
  }
}

/** A 32-bit mix of the node id (a treap priority): deterministic, well spread. */
function hashNodeId(nodeId: number): number {
  let h = Math.imul(nodeId ^ 0x9e3779b9, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function compareNodes(a: TreeNode, b: TreeNode): number {
  if (a.key < b.key) return -1;
  if (a.key > b.key) return 1;
  return a.nodeId - b.nodeId;
}

/** Recomputes a node's subtree maxima from its own values and its children's. */
function pull(node: TreeNode): void {
  const { left, right } = node;
  for (let d = 0; d < 3; d++) {
    let amount = node.free[d] as number;
    let holder = node.nodeId;
    if (left !== null) {
      const childAmount = left.maxFree[d] as number;
      const childHolder = left.maxFreeNode[d] as number;
      if (childAmount > amount || (childAmount === amount && childHolder < holder)) {
        amount = childAmount;
        holder = childHolder;
      }
    }
    if (right !== null) {
      const childAmount = right.maxFree[d] as number;
      const childHolder = right.maxFreeNode[d] as number;
      if (childAmount > amount || (childAmount === amount && childHolder < holder)) {
        amount = childAmount;
        holder = childHolder;
      }
    }
    node.maxFree[d] = amount;
    node.maxFreeNode[d] = holder;
  }
}

/** True if the subtree may hold a worker with `need` free in every dimension. */
function mayCover(node: TreeNode, need: readonly number[]): boolean {
  return (
    (node.maxFree[0] as number) >= (need[0] as number) &&
    (node.maxFree[1] as number) >= (need[1] as number) &&
    (node.maxFree[2] as number) >= (need[2] as number)
  );
}

function covers(
  node: TreeNode,
  need: readonly number[],
  excluded: ReadonlySet<NodeId> | undefined,
): boolean {
  return (
    (node.free[0] as number) >= (need[0] as number) &&
    (node.free[1] as number) >= (need[1] as number) &&
    (node.free[2] as number) >= (need[2] as number) &&
    excluded?.has(node.nodeId) !== true
  );
}

/** Splits `tree` into the nodes before and after `pivot` (which is not in it). */
function split(tree: TreeNode | null, pivot: TreeNode): [TreeNode | null, TreeNode | null] {
  if (tree === null) return [null, null];
  if (compareNodes(tree, pivot) < 0) {
    const [before, after] = split(tree.right, pivot);
    tree.right = before;
    pull(tree);
    return [tree, after];
  }
  const [before, after] = split(tree.left, pivot);
  tree.left = after;
  pull(tree);
  return [before, tree];
}

/** Joins two trees, every node of `a` before every node of `b`. */
function merge(a: TreeNode | null, b: TreeNode | null): TreeNode | null {
  if (a === null) return b;
  if (b === null) return a;
  if (a.priority >= b.priority) {
    a.right = merge(a.right, b);
    pull(a);
    return a;
  }
  b.left = merge(a, b.left);
  pull(b);
  return b;
}

function insert(tree: TreeNode | null, node: TreeNode): TreeNode {
  if (tree === null || node.priority > tree.priority) {
    const [before, after] = split(tree, node);
    node.left = before;
    node.right = after;
    pull(node);
    return node;
  }
  if (compareNodes(node, tree) < 0) tree.left = insert(tree.left, node);
  else tree.right = insert(tree.right, node);
  pull(tree);
  return tree;
}

function remove(tree: TreeNode | null, node: TreeNode): TreeNode | null {
  if (tree === null) return null;
  if (tree === node) {
    const joined = merge(node.left, node.right);
    node.left = null;
    node.right = null;
    return joined;
  }
  if (compareNodes(node, tree) < 0) tree.left = remove(tree.left, node);
  else tree.right = remove(tree.right, node);
  pull(tree);
  return tree;
}

/** The first node in order, with key ≥ `fromKey` if given, that covers `need`. */
function findFirst(
  tree: TreeNode | null,
  need: readonly number[],
  excluded: ReadonlySet<NodeId> | undefined,
  fromKey: TreeKey | undefined,
): TreeNode | null {
  if (tree === null || !mayCover(tree, need)) return null;
  if (fromKey !== undefined && tree.key < fromKey) {
    return findFirst(tree.right, need, excluded, fromKey);
  }
  return (
    findFirst(tree.left, need, excluded, fromKey) ??
    (covers(tree, need, excluded) ? tree : findFirst(tree.right, need, excluded, fromKey))
  );
}

/** The last node in order that covers `need`. */
function findLast(
  tree: TreeNode | null,
  need: readonly number[],
  excluded: ReadonlySet<NodeId> | undefined,
): TreeNode | null {
  if (tree === null || !mayCover(tree, need)) return null;
  return (
    findLast(tree.right, need, excluded) ??
    (covers(tree, need, excluded) ? tree : findLast(tree.left, need, excluded))
  );
}

function forEachNode(tree: TreeNode | null, visit: (node: TreeNode) => void): void {
  if (tree === null) return;
  forEachNode(tree.left, visit);
  visit(tree);
  forEachNode(tree.right, visit);
}

/** See the module comment. */
export class CapacityTree {
  #root: TreeNode | null = null;
  #size = 0;

  /** How many workers the tree holds. */
  get size(): number {
    return this.#size;
  }

  /** The root (for the subtree maxima of the whole tree), or null when empty. */
  get root(): TreeNode | null {
    return this.#root;
  }

  /** Links `node`, which must not be linked; set its key and free amounts first. */
  insert(node: TreeNode): void {
    this.#root = insert(this.#root, node);
    this.#size++;
  }

  /** Unlinks `node`, which must be linked here. */
  remove(node: TreeNode): void {
    this.#root = remove(this.#root, node);
    this.#size--;
  }

  /**
   * The first worker in ascending (key, node id) order with at least `need` free in every
   * dimension and not in `excluded` (binpack's choice), or null.
   */
  first(need: readonly number[], excluded?: ReadonlySet<NodeId>): TreeNode | null {
    return findFirst(this.#root, need, excluded, undefined);
  }

  /**
   * Among the workers that cover `need` and are not excluded, one of the highest key, the lowest
   * node id of those (spread's choice), or null.
   */
  highest(need: readonly number[], excluded?: ReadonlySet<NodeId>): TreeNode | null {
    const last = findLast(this.#root, need, excluded);
    if (last === null) return null;
    return findFirst(this.#root, need, excluded, last.key);
  }

  /** Visits every worker in order (explanations with exclusions, tests). */
  forEach(visit: (node: TreeNode) => void): void {
    forEachNode(this.#root, visit);
  }
}
