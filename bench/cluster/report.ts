/**
 * The cluster benchmark's comparison report: Blixard against etcd driven through two client
 * paths (native gRPC and the JSON gateway), each ratio taken against the better etcd figure, as
 * a table, the target lines and one `BENCH_JSON {...}` line.
 */
import type { WorkloadResult } from "./load.js";
import type { SuiteResult } from "./workloads.js";

/** The etcd client paths, in report order. */
export const ETCD_PATHS = ["grpc", "gateway"] as const;
/** One of {@link ETCD_PATHS}. */
export type EtcdPath = (typeof ETCD_PATHS)[number];

/** What one run of the benchmark measured. */
export interface ClusterResults {
  readonly blixard: SuiteResult;
  /** etcd's results by client path; a path that did not run is missing. */
  readonly etcd: Partial<Record<EtcdPath, SuiteResult>>;
}

/** The better etcd figure of one workload (higher ops/s, lower p99) and the path that gave it. */
export interface BestEtcd {
  readonly opsPerSec: number;
  readonly opsPerSecPath: EtcdPath;
  readonly p99Ms: number;
  readonly p99Path: EtcdPath;
}

/** A number for a table cell: "-" for undefined or NaN. */
export function fmt(n: number | undefined, digits = 0): string {
  return n === undefined || Number.isNaN(n) ? "-" : n.toFixed(digits);
}

/** A plain-text table; the first `leftColumns` columns are left-aligned, the others right. */
export function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  leftColumns = 1,
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i < leftColumns ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** The etcd paths that ran, in report order. */
function etcdPaths(results: ClusterResults): EtcdPath[] {
  return ETCD_PATHS.filter((path) => results.etcd[path] !== undefined);
}

/**
 * The better etcd figures of workload `name` over the paths that measured it, each figure on
 * its own (the ops/s may come from one path and the p99 from the other); undefined if none did.
 */
export function bestEtcd(results: ClusterResults, name: string): BestEtcd | undefined {
  let best: BestEtcd | undefined;
  for (const path of etcdPaths(results)) {
    const e = results.etcd[path]?.workloads[name];
    if (e === undefined || e.ops === 0) continue;
    best = {
      ...(best === undefined || e.opsPerSec > best.opsPerSec
        ? { opsPerSec: e.opsPerSec, opsPerSecPath: path }
        : { opsPerSec: best.opsPerSec, opsPerSecPath: best.opsPerSecPath }),
      ...(best === undefined || e.p99Ms < best.p99Ms
        ? { p99Ms: e.p99Ms, p99Path: path }
        : { p99Ms: best.p99Ms, p99Path: best.p99Path }),
    };
  }
  return best;
}

/** The etcd path with the lower failover median, and that median; undefined if none ran one. */
function bestFailover(results: ClusterResults): { medianMs: number; path: EtcdPath } | undefined {
  let best: { medianMs: number; path: EtcdPath } | undefined;
  for (const path of etcdPaths(results)) {
    const medianMs = results.etcd[path]?.failover.medianMs ?? Number.NaN;
    if (Number.isNaN(medianMs)) continue;
    if (best === undefined || medianMs < best.medianMs) best = { medianMs, path };
  }
  return best;
}

const LABELS: Readonly<Record<EtcdPath, string>> = {
  grpc: "etcd grpc",
  gateway: "etcd gateway",
};

const ratio = (x: number, y: number): string => `${(x / y).toFixed(2)}x`;
const met = (ok: boolean): string => (ok ? "met" : "NOT met");

/** The main table: one row per workload and system. */
function workloadTable(results: ClusterResults, names: readonly string[]): string {
  const rows: string[][] = [];
  const cells = (w: WorkloadResult, marks: { ops: string; p99: string }): string[] => [
    `${fmt(w.opsPerSec)}${marks.ops}`,
    fmt(w.p50Ms, 2),
    `${fmt(w.p99Ms, 2)}${marks.p99}`,
    fmt(w.serverCpuPct),
    fmt(w.serverCpuUsPerOp),
    fmt(w.benchCpuPct),
    fmt(w.benchCpuUsPerOp),
    fmt(w.machineCpuPct),
  ];
  for (const name of names) {
    const b = results.blixard.workloads[name];
    const best = bestEtcd(results, name);
    const first = rows.length;
    if (b !== undefined) {
      rows.push([
        name,
        "blixard",
        ...cells(b, { ops: " ", p99: " " }),
        best === undefined ? "" : ratio(b.opsPerSec, best.opsPerSec),
        best === undefined ? "" : ratio(b.p99Ms, best.p99Ms),
      ]);
    }
    for (const path of etcdPaths(results)) {
      const e = results.etcd[path]?.workloads[name];
      if (e === undefined) continue;
      const mark = (ours: boolean): string => (ours ? "*" : " ");
      rows.push([
        rows.length === first ? name : "",
        LABELS[path],
        ...cells(e, { ops: mark(best?.opsPerSecPath === path), p99: mark(best?.p99Path === path) }),
        "",
        "",
      ]);
    }
  }
  // "ops/s " and "p99 ms " end in a space: every cell of theirs ends in a mark or a space.
  const header = [
    "workload",
    "system",
    "ops/s ",
    "p50 ms",
    "p99 ms ",
    "server cpu %",
    "server µs/op",
    "bench cpu %",
    "bench µs/op",
    "host %",
    "ops/s ratio",
    "p99 ratio",
  ];
  return table(header, rows, 2);
}

/** The failover table: one row per system. */
function failoverTable(results: ClusterResults): string {
  const systems: [string, SuiteResult][] = [
    ["blixard", results.blixard],
    ...etcdPaths(results).map((path): [string, SuiteResult] => [
      LABELS[path],
      results.etcd[path] as SuiteResult,
    ]),
  ];
  const rows = systems.map(([label, r]) => [
    label,
    r.failover.runsMs.map((ms) => fmt(ms)).join(" / "),
    fmt(r.failover.medianMs),
    fmt(r.failover.maxMs),
    r.failover.failedWrites.join(" / "),
  ]);
  return table(["failover", "runs ms", "median ms", "slowest ms", "failed writes"], rows);
}

/**
 * Prints the comparison of the workloads `names` (in that order; a workload no system ran is
 * left out): the table, the targets met or not, and the `BENCH_JSON` line with `meta` and the
 * etcd figures of each path apart.
 */
export function report(
  results: ClusterResults,
  options: { readonly names: readonly string[]; readonly meta: Record<string, unknown> },
): void {
  const { blixard } = results;
  const names = options.names;
  const out = (text: string): boolean => process.stdout.write(text);
  out(`\n${workloadTable(results, names)}\n`);
  if (blixard.failover.runsMs.length > 0) out(`\n${failoverTable(results)}\n`);
  const fo = bestFailover(results);
  out(
    "\nserver cpu % = CPU the 3 server processes used, bench cpu % = CPU this load generator used " +
      "(process.cpuUsage), host % = CPU the whole machine used (servers, load generator and " +
      `anything else), all in % of one core (this machine has ${String(options.meta["cpus"])}); ` +
      "µs/op = that CPU per successful operation. Ratios are Blixard / the better etcd path, " +
      "figure by figure (* marks it: the higher ops/s, the lower p99); targets: ops/s >= 2x, " +
      "p99 <= 1x, failover < 500 ms.\n",
  );

  const idle = (r: SuiteResult): string =>
    r.idleCpuPctPerMember.map((p) => `${p.toFixed(1)}%`).join(" / ");
  const idleMet = blixard.idleCpuPctPerMember.every((p) => p <= 1);
  out(
    `idle CPU per member: Blixard ${idle(blixard)}` +
      etcdPaths(results)
        .map((path) => `, ${LABELS[path]} ${idle(results.etcd[path] as SuiteResult)}`)
        .join("") +
      ` (target <= 1% of a core: ${met(idleMet)})\n`,
  );
  const failoverUnder500Ms = blixard.failover.maxMs < 500;
  out(
    blixard.failover.runsMs.length === 0
      ? "failover: not run\n"
      : `failover < 500 ms in every run (slowest ${fmt(blixard.failover.maxMs)} ms): ${met(failoverUnder500Ms)}` +
          (fo === undefined
            ? "\n"
            : `; median ${fmt(blixard.failover.medianMs)} ms = ${ratio(blixard.failover.medianMs, fo.medianMs)} ` +
              `${LABELS[fo.path]}'s ${fmt(fo.medianMs)} ms\n`),
  );

  const ratios: Record<string, unknown> = {};
  const targets: Record<string, unknown> = { failoverUnder500Ms };
  for (const name of names) {
    const b = blixard.workloads[name];
    const best = bestEtcd(results, name);
    if (b === undefined || best === undefined) continue;
    const twiceThroughput = b.opsPerSec >= 2 * best.opsPerSec;
    const p99NoWorse = b.p99Ms <= best.p99Ms;
    ratios[name] = {
      opsPerSec: b.opsPerSec / best.opsPerSec,
      opsPerSecAgainst: best.opsPerSecPath,
      p99: b.p99Ms / best.p99Ms,
      p99Against: best.p99Path,
    };
    targets[name] = { twiceThroughput, p99NoWorse };
    out(
      `${name}: >= 2x etcd ops/s ${met(twiceThroughput)} (vs ${LABELS[best.opsPerSecPath]} ` +
        `${fmt(best.opsPerSec)}), p99 no worse ${met(p99NoWorse)} (vs ${LABELS[best.p99Path]} ` +
        `${fmt(best.p99Ms, 2)} ms)\n`,
    );
  }
  if (fo !== undefined) {
    ratios["failoverMedian"] = blixard.failover.medianMs / fo.medianMs;
    ratios["failoverMedianAgainst"] = fo.path;
  }
  const ran = etcdPaths(results).length > 0;
  out(
    `BENCH_JSON ${JSON.stringify({
      ...options.meta,
      blixard,
      etcd: ran ? { grpc: results.etcd.grpc ?? null, gateway: results.etcd.gateway ?? null } : null,
      ratios: ran ? ratios : null,
      targets,
    })}\n`,
  );
}
