/**
 * Lock workloads of the cluster benchmark, through the SDK's `lock()` (src/client/lock.ts), each
 * worker a `BlixardClient` holding one lease for the whole run (etcd's session pattern: the
 * lease is granted once and kept alive; an acquisition joins the line with one txn, lists it and
 * waits on the server for its predecessor; a release deletes the key):
 *
 * - **contended**: N workers take and release the same lock in a loop; acquisitions/s is the
 *   hand-over rate, and an acquisition's latency includes waiting for the holders ahead.
 * - **uncontended**: N workers, each its own lock.
 *
 * One operation is an acquire followed by its release; acquire and release latencies are also
 * kept apart.
 */
import { BlixardClient, Lease, lock } from "../../src/client/index.js";
import { quantile } from "./load.js";
import type { ExtraWorkload } from "./workloads.js";

/** The lock workloads: name, workers, and whether they share one lock. */
export const LOCK_WORKLOADS = [
  { name: "lock contended c=8 (one lock)", workers: 8, shared: true },
  { name: "lock contended c=32 (one lock)", workers: 32, shared: true },
  { name: "lock uncontended c=16 (16 locks)", workers: 16, shared: false },
] as const;

/** The lease TTL of the workers' sessions. */
const SESSION_TTL_MS = 10_000;

/** Acquire and release latencies of one lock workload, ms. */
export interface LockLatencies {
  readonly acquireP50Ms: number;
  readonly acquireP99Ms: number;
  readonly releaseP50Ms: number;
  readonly releaseP99Ms: number;
}

/**
 * The lock workloads against `endpoints`, as suite extras; `latencies` receives each one's
 * acquire and release quantiles when it ends.
 */
export function lockWorkloads(
  endpoints: readonly string[],
  latencies: Map<string, LockLatencies>,
): ExtraWorkload[] {
  return LOCK_WORKLOADS.map(({ name, workers, shared }) => {
    const clients: BlixardClient[] = [];
    const leases: Lease[] = [];
    const acquire: number[] = [];
    const release: number[] = [];
    return {
      name,
      concurrency: workers,
      setup: async () => {
        for (let w = 0; w < workers; w++) {
          const client = new BlixardClient({ endpoints: [...endpoints] });
          clients.push(client);
          leases.push(await Lease.grant(client, SESSION_TTL_MS));
        }
      },
      op: async (worker) => {
        const client = clients[worker] as BlixardClient;
        const t0 = performance.now();
        const held = await lock(client, shared ? "bench-lock" : `bench-lock-${worker}`, {
          lease: leases[worker] as Lease,
        });
        const t1 = performance.now();
        await held.release();
        const t2 = performance.now();
        acquire.push(t1 - t0);
        release.push(t2 - t1);
      },
      teardown: async () => {
        await Promise.allSettled(leases.map((lease) => lease.revoke()));
        acquire.sort((a, b) => a - b);
        release.sort((a, b) => a - b);
        latencies.set(name, {
          acquireP50Ms: quantile(acquire, 0.5),
          acquireP99Ms: quantile(acquire, 0.99),
          releaseP50Ms: quantile(release, 0.5),
          releaseP99Ms: quantile(release, 0.99),
        });
      },
    };
  });
}
