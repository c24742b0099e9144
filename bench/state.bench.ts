/**
 * The growing-state benchmark (issue 20): fills a real 3-node Blixard cluster (and, when an
 * `etcd` binary is installed, a 3-member etcd) with `--keys` distinct keys of `--value-bytes`
 * through `--concurrency` writes in flight, then SIGKILLs one follower and restarts it.
 *
 *   npm run bench:state [-- --keys 200000 --value-bytes 1024 --concurrency 128 --no-etcd]
 *   npm run bench:state -- --keys 1000000          (the longer option)
 *   npm run bench:state -- --cpu-prof-dir DIR      the members' CPU profiles (node --cpu-prof;
 *     written as they exit: not the SIGKILLed follower's)
 *
 * Reports per system: fill rate, failed writes (each is retried until it succeeds), leader
 * changes (raft term increases seen during the fill), bytes of snapshots written per node
 * (Blixard: from its logs; etcd: bbolt is incremental, its .snap files are counted), snapshot
 * sends per follower, peak RSS per member (VmHWM), and restart-to-healthy of one follower: from
 * its restart until it serves a linearizable read and has applied what was committed when it
 * was killed. Ends with one `BENCH_JSON {...}` line. Kills only the processes it started and
 * removes its temporary directories.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureBuilt } from "../test/cli/helpers.js";
import { BlixardCluster } from "./cluster/blixard.js";
import { EtcdCluster, findEtcd } from "./cluster/etcd.js";
import { cleanupSync, sleep, tempDir, until } from "./cluster/procs.js";
import type { ClusterTarget } from "./cluster/target.js";

const { values: args } = parseArgs({
  options: {
    keys: { type: "string", default: "200000" },
    "value-bytes": { type: "string", default: "1024" },
    concurrency: { type: "string", default: "128" },
    "no-etcd": { type: "boolean", default: false },
    "cpu-prof-dir": { type: "string" },
  },
});
const KEYS = Number(args.keys);
const VALUE_BYTES = Number(args["value-bytes"]);
const CONCURRENCY = Number(args.concurrency);
const TERM_POLL_MS = 200;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** What the bench reads from a system beyond the common target interface. */
interface StateTarget extends ClusterTarget {
  readonly dataDirs: readonly string[];
  /** The member's raft term, commit (or raft) index and applied index. */
  raftState(member: number): Promise<{ term: number; committed: number; applied: number }>;
  /** Bytes of snapshots written by each member, and snapshots sent to each member. */
  snapshotStats(): { bytesWritten: number[]; sendsTo: number[] };
}

function blixardTarget(root: string): StateTarget {
  const profileDir = args["cpu-prof-dir"];
  const cluster = new BlixardCluster(
    root,
    3,
    ["--insecure", "--api-auth", "insecure-open"],
    profileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", profileDir],
  );
  return Object.assign(cluster, {
    async raftState(member: number) {
      const s = await cluster.status(member);
      return {
        term: Number(s["term"]),
        committed: Number(s["commitIndex"]),
        applied: Number(s["appliedIndex"]),
      };
    },
    snapshotStats() {
      const bytesWritten: number[] = [];
      const sendsTo = [0, 0, 0];
      cluster.dataDirs.forEach((dir, i) => {
        let bytes = 0;
        for (const line of readLines(join(dir, "node.log"))) {
          if (line.includes("took snapshot"))
            bytes += Number(/"sizeBytes":(\d+)/.exec(line)?.[1] ?? 0);
          if (line.includes("sending snapshot")) {
            const to = Number(/"to":(\d+)/.exec(line)?.[1] ?? 0);
            if (to >= 1 && to <= 3) sendsTo[to - 1] = (sendsTo[to - 1] ?? 0) + 1;
          }
        }
        bytesWritten[i] = bytes;
      });
      return { bytesWritten, sendsTo };
    },
  });
}

function etcdTarget(bin: string, root: string): StateTarget {
  const cluster = new EtcdCluster(bin, root);
  return Object.assign(cluster, {
    async raftState(member: number) {
      const s = await cluster.status(member);
      const header = s["header"] as { raft_term?: string } | undefined;
      return {
        term: Number(s["raftTerm"] ?? header?.raft_term ?? 0),
        committed: Number(s["raftIndex"] ?? 0),
        applied: Number(s["raftAppliedIndex"] ?? s["raftIndex"] ?? 0),
      };
    },
    snapshotStats() {
      // etcd's state lives in bbolt (written incrementally); its raft snapshots are .snap files
      // of the same database, the newest few kept: counted as written bytes here.
      const bytesWritten = cluster.dataDirs.map((dir) =>
        filesUnder(join(dir, "data", "member", "snap"))
          .filter((f) => f.endsWith(".snap"))
          .reduce((sum, f) => sum + statSync(f).size, 0),
      );
      return { bytesWritten, sendsTo: [] };
    },
  });
}

function readLines(path: string): string[] {
  try {
    return readFileSync(path, "utf8").split("\n");
  } catch {
    return [];
  }
}

function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir).map((name) => join(dir, name));
  } catch {
    return [];
  }
}

/** Peak resident set (VmHWM) of a process, in MB; 0 if it is gone. */
function peakRssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** The 1-minute load average and the number of cores, for the report. */
function load(): string {
  const avg = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  return `load ${avg}`;
}

interface StateResult {
  readonly name: string;
  readonly putsPerSec: number;
  readonly failedWrites: number;
  readonly leaderChanges: number;
  readonly snapshotBytesPerNode: number[];
  readonly snapshotSendsPerFollower: number[];
  readonly peakRssMb: number;
  /** Peak RSS of each member at the end of the fill, in member order. */
  readonly memberPeakRssMb: number[];
  /** The member that led at the end of the fill. */
  readonly leaderMember: number;
  readonly restartPeakRssMb: number;
  readonly restartMs: number;
  readonly fillSeconds: number;
}

async function fill(target: StateTarget): Promise<{ seconds: number; failed: number }> {
  const value = "v".repeat(VALUE_BYTES);
  let leader = await target.waitForLeader(30_000);
  let next = 0;
  let failed = 0;
  let done = 0;
  const started = performance.now();
  let lastReport = started;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= KEYS) return;
      for (;;) {
        try {
          await target.put(leader, `key-${i}`, value, 10_000);
          break;
        } catch {
          failed++;
          await sleep(20);
          leader = await target.waitForLeader(30_000).catch(() => leader);
        }
      }
      done++;
      const now = performance.now();
      if (now - lastReport > 5000) {
        lastReport = now;
        log(
          `${target.name}: ${done} keys, ${(done / ((now - started) / 1000)).toFixed(0)} puts/s, ${failed} failed, ${load()}`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker()));
  return { seconds: (performance.now() - started) / 1000, failed };
}

async function measure(target: StateTarget): Promise<StateResult> {
  log(`${target.name}: starting 3 members`);
  await target.start();
  try {
    const terms = await Promise.all([0, 1, 2].map((m) => target.raftState(m)));
    const firstTerm = Math.max(...terms.map((t) => t.term));
    let maxTerm = firstTerm;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        for (const m of [0, 1, 2]) {
          const s = await target.raftState(m).catch(() => undefined);
          if (s !== undefined) maxTerm = Math.max(maxTerm, s.term);
        }
        await sleep(TERM_POLL_MS);
      }
    })();
    const { seconds, failed } = await fill(target);
    polling = false;
    await poller;
    // Let a snapshot in progress finish before counting.
    await sleep(2000);
    const pids = target.pids();
    const memberPeaks = pids.map(peakRssMb);
    const peak = Math.max(...memberPeaks);
    const stats = target.snapshotStats();
    const leader = await target.waitForLeader();
    const follower = leader === 0 ? 1 : 0;

    const before = await target.raftState(leader);
    await target.kill(follower);
    const t0 = performance.now();
    await target.restart(follower);
    let problem = "no answer yet";
    await until(
      async () => {
        try {
          await target.get(follower, "key-0");
          const s = await target.raftState(follower);
          problem = `applied ${s.applied} of ${before.committed}`;
          return s.applied >= before.committed ? true : undefined;
        } catch (error) {
          problem = error instanceof Error ? error.message : String(error);
          return undefined;
        }
      },
      `${target.name} member ${follower + 1} healthy after restart`,
      300_000,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)} (last: ${problem})`);
    });
    const restartMs = performance.now() - t0;
    const restartedPid = target.pids().find((pid) => !pids.includes(pid));
    const restartPeak = restartedPid === undefined ? 0 : peakRssMb(restartedPid);
    return {
      name: target.name,
      putsPerSec: KEYS / seconds,
      failedWrites: failed,
      leaderChanges: maxTerm - firstTerm,
      snapshotBytesPerNode: stats.bytesWritten,
      snapshotSendsPerFollower: stats.sendsTo,
      peakRssMb: peak,
      memberPeakRssMb: memberPeaks,
      leaderMember: leader,
      restartPeakRssMb: restartPeak,
      restartMs,
      fillSeconds: seconds,
    };
  } finally {
    await target.stop();
  }
}

function print(r: StateResult, dataBytes: number): void {
  const mb = (n: number): string => (n / 1e6).toFixed(0);
  log(
    [
      `${r.name}:`,
      `  fill: ${r.putsPerSec.toFixed(0)} puts/s (${r.fillSeconds.toFixed(1)} s), ${r.failedWrites} failed writes, ${r.leaderChanges} leader changes`,
      `  snapshots written per node: ${r.snapshotBytesPerNode.map(mb).join(" / ")} MB for ${mb(dataBytes)} MB of data`,
      `  snapshot sends per member: ${r.snapshotSendsPerFollower.join(" / ") || "-"}`,
      `  peak RSS per member: ${r.peakRssMb.toFixed(0)} MB max (${r.memberPeakRssMb.map((m, i) => `${m.toFixed(0)}${i === r.leaderMember ? " leader" : ""}`).join(" / ")}); restarted member ${r.restartPeakRssMb.toFixed(0)} MB`,
      `  restart of one follower to healthy: ${r.restartMs.toFixed(0)} ms`,
    ].join("\n"),
  );
}

async function main(): Promise<void> {
  await ensureBuilt();
  const dataBytes = KEYS * (VALUE_BYTES + `key-${KEYS}`.length);
  log(`bench:state: ${KEYS} keys × ${VALUE_BYTES} B, ${CONCURRENCY} in flight; ${load()}`);
  const blixard = await measure(blixardTarget(tempDir("blixard-state-")));
  print(blixard, dataBytes);
  const etcdBin = args["no-etcd"] ? undefined : findEtcd();
  let etcd: StateResult | undefined;
  if (etcdBin !== undefined) {
    etcd = await measure(etcdTarget(etcdBin.path, tempDir("etcd-state-")));
    print(etcd, dataBytes);
  } else {
    log("etcd: not installed (or --no-etcd); Blixard only");
  }
  log(`after: ${load()}`);
  const maxSnapshotBytes = Math.max(...blixard.snapshotBytesPerNode);
  const json = {
    keys: KEYS,
    putsPerSec: Math.round(blixard.putsPerSec),
    etcdPutsPerSec: etcd === undefined ? null : Math.round(etcd.putsPerSec),
    failedWrites: blixard.failedWrites,
    leaderChanges: blixard.leaderChanges,
    snapshotBytesPerDataByte: Number((maxSnapshotBytes / dataBytes).toFixed(2)),
    snapshotSendsPerFollower: Math.max(0, ...blixard.snapshotSendsPerFollower),
    restartMs: Math.round(blixard.restartMs),
    etcdRestartMs: etcd === undefined ? null : Math.round(etcd.restartMs),
    peakRssMb: Math.round(Math.max(blixard.peakRssMb, blixard.restartPeakRssMb)),
    etcdPeakRssMb: etcd === undefined ? null : Math.round(etcd.peakRssMb),
  };
  process.stdout.write(`BENCH_JSON ${JSON.stringify(json)}\n`);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    cleanupSync();
    process.exit(130);
  });
}
main().then(
  () => cleanupSync(),
  (error: unknown) => {
    log(`bench:state failed: ${error instanceof Error ? error.stack : String(error)}`);
    cleanupSync();
    process.exit(1);
  },
);
