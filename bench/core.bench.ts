/**
 * Consensus core throughput: entries committed and applied per second through a 3-node
 * in-memory cluster driven only by the core (MemoryStorage, no I/O, no network), 128-byte
 * payloads, proposals batched. Prints numbers; asserts nothing.
 *
 *   npm run bench:core [-- --entries 2000000 --batch 256 --payload 128]
 */
import { parseArgs } from "node:util";
import { TestCluster } from "../test/raft/cluster.js";

const { values } = parseArgs({
  options: {
    entries: { type: "string", default: "1000000" },
    batch: { type: "string", default: "256" },
    payload: { type: "string", default: "128" },
    nodes: { type: "string", default: "3" },
  },
});
const totalEntries = Number(values.entries);
const batchSize = Number(values.batch);
const payloadBytes = Number(values.payload);
const nodeCount = Number(values.nodes);

function run(entries: number): { seconds: number; batchLatencyUs: number[] } {
  const ids = Array.from({ length: nodeCount }, (_, i) => i + 1);
  const cluster = new TestCluster({
    voters: ids,
    config: { maxSizePerMsgBytes: 4 * 1024 * 1024, maxInflightMessages: 1024 },
  });
  cluster.elect(1);
  const leader = cluster.node(1);
  const payload = new Uint8Array(payloadBytes).fill(7);
  const batch = Array.from({ length: batchSize }, () => payload);
  const latencies: number[] = [];
  // Free memory as we go: the harness records applied entries for tests; the bench does not.
  const start = performance.now();
  let proposed = 0;
  while (proposed < entries) {
    const t0 = performance.now();
    leader.raw.propose(...batch);
    proposed += batchSize;
    cluster.stabilize();
    latencies.push((performance.now() - t0) * 1000);
    for (const node of cluster.nodes.values()) {
      node.applied.length = 0;
      // Keep the in-memory logs small, as a real node's snapshot policy would.
      if (node.appliedIndex > 10_000) {
        const compactTo = node.appliedIndex - 1000;
        if (compactTo > node.storage.firstIndex()) node.storage.compact(compactTo);
      }
    }
  }
  const seconds = (performance.now() - start) / 1000;
  for (const id of ids) {
    const node = cluster.node(id);
    if (node.appliedIndex < proposed) {
      throw new Error(`node ${id} applied ${node.appliedIndex} of ${proposed}`);
    }
  }
  return { seconds, batchLatencyUs: latencies };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

run(Math.min(100_000, totalEntries)); // warm-up: JIT
const { seconds, batchLatencyUs } = run(totalEntries);
batchLatencyUs.sort((a, b) => a - b);
const entriesPerSecond = totalEntries / seconds;
console.log(
  JSON.stringify(
    {
      bench: "core",
      nodes: nodeCount,
      entries: totalEntries,
      batchSize,
      payloadBytes,
      seconds: Number(seconds.toFixed(3)),
      entriesPerSecond: Math.round(entriesPerSecond),
      megabytesPerSecond: Number(((entriesPerSecond * payloadBytes) / 1e6).toFixed(1)),
      batchLatencyUsP50: Math.round(percentile(batchLatencyUs, 50)),
      batchLatencyUsP99: Math.round(percentile(batchLatencyUs, 99)),
    },
    null,
    2,
  ),
);
