/**
 * The microVM benchmark: boot-to-ready of the Blixard guest (guest/build-image.sh) under the
 * qemu driver, the way a node runs it (TCG here: this machine kind cannot run a KVM guest).
 *
 *   npm run bench:vm [-- --runs 5 --concurrent 10 --memory-mb 128 --accel tcg|kvm]
 *
 * Boot-to-ready is the time from `QemuDriver.start` to the guest's `BLIXARD-READY <nonce>` line
 * on its serial console (status `running`): QEMU's start, firmware, kernel, initramfs, module
 * loading, networking and httpd included. It measures `--runs` single boots one after another,
 * then `--concurrent` guests started at once (each guest's own boot-to-ready). Density: first one
 * 64 MB guest is booted (`density64MbGuests` is 1 if it became ready within 60 s, else 0: the
 * Debian kernel's bzImage asks for `init_size` bytes above its 16 MB load address, read from its
 * header and printed); then `--density-memory-mb` guests (default 80 MB; 76 MB was the smallest
 * to boot that kernel here, 72 MB hung) are booted in waves of `--concurrent` until `--density-max` run at once or a wave
 * has one that does not become ready: `densityGuests` is how many were ready together, with the
 * QEMU processes' resident memory (p50) and how many such guests the host's available memory
 * would hold (a projection, not a boot). Migration: `--migrations` times, a ready
 * `--memory-mb` guest is live-migrated to a second driver (another run directory, as a second
 * node on this machine) and back over loopback TCP, the way two nodes do it
 * (`qemu-migration.ts`): `migrationDowntimeMs` is QEMU's `downtime` (how long the guest was
 * paused), `migrationTotalMs` its `total-time` (the whole stream), both medians; the table also
 * gives the time from the source's `migrate` to the target's guest reported running. The same
 * migrations then run with a `--migration-disk-gb` data disk (formatted and mounted by the guest)
 * that moves along (`qemu-disk-migration.ts`): `migrationWithDiskDowntimeMs` and
 * `migrationWithDiskTotalMs`, medians. Migrations go over mutual TLS with node certificates of a
 * throwaway CA, as between two nodes by default (`qemu-migration-tls.ts`); `--migration-tls off`
 * measures them plain, as under `--insecure`.
 *
 * Prints a table and one line `BENCH_JSON {...}`. Stops every QEMU it started and removes its
 * temporary directory, on success, error, Ctrl-C or SIGTERM.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Clock } from "../src/common/clock.js";
import { QemuDriver } from "../src/orchestrator/drivers/qemu-driver.js";
import type { MigrationTls } from "../src/orchestrator/drivers/qemu-migration-tls.js";
import { writeQemuTlsDir } from "../src/orchestrator/drivers/qemu-tls-dir.js";
import type { VmHandle } from "../src/orchestrator/drivers/vm-driver.js";
import {
  createCertificateAuthority,
  issueNodeCertificate,
  type IssuedCertificate,
} from "../src/security/index.js";
import type { VmSpec } from "../src/statemachine/orchestrator/types.js";
import { buildGuest } from "../test/orchestrator/drivers/guest-image.js";

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    concurrent: { type: "string", default: "10" },
    "memory-mb": { type: "string", default: "128" },
    accel: { type: "string", default: "tcg" },
    "ready-timeout-ms": { type: "string", default: "300000" },
    migrations: { type: "string", default: "3" },
    "migration-disk-gb": { type: "string", default: "1" },
    "density-memory-mb": { type: "string", default: "80" },
    "density-max": { type: "string", default: "40" },
    "migration-tls": { type: "string", default: "on" },
  },
});
const MIGRATIONS = Number(args.migrations);
const RUNS = Number(args.runs);
const CONCURRENT = Number(args.concurrent);
const MEMORY_MB = Number(args["memory-mb"]);
const ACCEL = args.accel === "kvm" ? "kvm" : "tcg";
const READY_TIMEOUT_MS = Number(args["ready-timeout-ms"]);
const MIGRATION_DISK_GB = Number(args["migration-disk-gb"]);
const DENSITY_MEMORY_MB = Number(args["density-memory-mb"]);
const DENSITY_MAX = Number(args["density-max"]);
const MIGRATION_TLS = args["migration-tls"] !== "off";
/** A 64 MB guest that has not announced readiness by then never will (it hangs at load). */
const PROBE_64MB_TIMEOUT_MS = 60_000;

const clock: Clock = {
  now: () => performance.now(),
  setTimer: (delayMs, callback) => {
    const timer = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(timer) };
  },
};

const root = mkdtempSync(join(tmpdir(), "bx-benchvm-"));
const live = new Set<VmHandle>();
async function cleanup(): Promise<void> {
  await Promise.all([...live].map((handle) => handle.stop({ graceMs: 100 })));
  rmSync(root, { recursive: true, force: true });
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void cleanup().finally(() => process.exit(130)));
}

const guest = buildGuest(join(root, "image"));

/** Nodes 1 (`driver`) and 2 (`otherDriver`) of a throwaway cluster: their QEMU TLS settings. */
async function migrationTlsOf(nodeId: number, ca: IssuedCertificate): Promise<MigrationTls> {
  const issued = await issueNodeCertificate(ca, { clusterId: BENCH_CLUSTER, nodeId });
  const dir = join(root, `migration-tls-${nodeId}`);
  writeQemuTlsDir(dir, { ca: ca.certPem, cert: issued.certPem, key: issued.keyPem });
  return { dir, clusterId: BENCH_CLUSTER };
}
const BENCH_CLUSTER = "bench";
const benchCa = MIGRATION_TLS
  ? await createCertificateAuthority({ clusterId: BENCH_CLUSTER })
  : undefined;
const tlsOf = async (nodeId: number) =>
  benchCa === undefined ? {} : { migrationTls: await migrationTlsOf(nodeId, benchCa) };
const driver = new QemuDriver({
  clock,
  runDir: join(root, "run"),
  logDir: join(root, "logs"),
  diskDir: join(root, "disks"),
  accel: ACCEL,
  readyTimeoutMs: READY_TIMEOUT_MS,
  startTimeoutMs: 120_000,
  quitTimeoutMs: 1000,
  ...(await tlsOf(1)),
});
/** The other end of the migrations: a driver with run and log directories of its own. */
const otherDriver = new QemuDriver({
  clock,
  runDir: join(root, "run-b"),
  logDir: join(root, "logs-b"),
  diskDir: join(root, "disks-b"),
  accel: ACCEL,
  readyTimeoutMs: READY_TIMEOUT_MS,
  startTimeoutMs: 120_000,
  quitTimeoutMs: 1000,
  ...(await tlsOf(2)),
});
const spec: VmSpec = {
  vcpus: 1,
  memoryMb: MEMORY_MB,
  diskGb: 0,
  driver: "qemu",
  command: "",
  args: [],
  kernel: guest.kernel,
  initrd: guest.initrd,
  image: "",
  cmdline: "",
  requiredFeatures: [],
  antiAffinityGroup: "",
  restart: { mode: "never", maxRestarts: 0, backoffMs: 0 },
};

/** Boots the 64 MB probe: the main driver would wait its whole ready timeout. */
const probeDriver = new QemuDriver({
  clock,
  runDir: join(root, "run-probe"),
  logDir: join(root, "logs-probe"),
  accel: ACCEL,
  readyTimeoutMs: PROBE_64MB_TIMEOUT_MS,
  startTimeoutMs: 120_000,
  quitTimeoutMs: 1000,
});

/** Starts guest `name`; resolves with its boot-to-ready in ms (null if it failed) and its handle. */
function boot(
  name: string,
  vmSpec = spec,
  on = driver,
): Promise<{ ms: number | null; handle: VmHandle }> {
  const startedMs = performance.now();
  return new Promise((resolve) => {
    const handle = on.start({
      name,
      spec: vmSpec,
      onChange: (o) => {
        if (o.status === "running") resolve({ ms: performance.now() - startedMs, handle });
        if (o.status === "failed") {
          process.stderr.write(`${name} failed: ${o.lastError}\n`);
          resolve({ ms: null, handle });
        }
      },
    });
    live.add(handle);
  });
}

/** One migration of `name` from `source` into a new incoming handle of `into`. */
async function migrateOnce(
  name: string,
  source: VmHandle,
  into: QemuDriver,
  vmSpec: VmSpec,
): Promise<{ target: VmHandle; downtimeMs: number; totalMs: number; toRunningMs: number }> {
  let listening = (_at: { uri: string; diskUri: string | undefined }): void => undefined;
  let ran = (): void => undefined;
  const at = new Promise<{ uri: string; diskUri: string | undefined }>(
    (resolve) => (listening = resolve),
  );
  const running = new Promise<void>((resolve) => (ran = resolve));
  const target = into.startIncoming({
    name,
    spec: vmSpec,
    onChange: (o) => {
      if (o.incomingUri !== undefined)
        listening({ uri: o.incomingUri, diskUri: o.incomingDiskUri });
      if (o.status === "running") ran();
      if (o.status === "failed") process.stderr.write(`incoming ${name} failed: ${o.lastError}\n`);
    },
  });
  live.add(target);
  const startedMs = performance.now();
  const migrate = source.migrate;
  if (migrate === undefined) throw new Error("the qemu driver's handles migrate");
  const { uri, diskUri } = await at;
  const stats = await migrate.call(source, {
    uri,
    nodeId: into === otherDriver ? 2 : 1,
    ...(diskUri === undefined ? {} : { diskUri }),
  });
  await running;
  const toRunningMs = performance.now() - startedMs;
  await stop(source);
  return { target, downtimeMs: stats.downtimeMs, totalMs: stats.totalMs, toRunningMs };
}

async function stop(handle: VmHandle): Promise<void> {
  await handle.stop({ graceMs: 100 });
  live.delete(handle);
}

function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? null;
}

const round = (ms: number | null): number | null => (ms === null ? null : Math.round(ms));

/** The memory the kernel's bzImage needs above its load address (`init_size`), in MB. */
function kernelInitSizeMb(): number {
  const header = readFileSync(guest.kernel).subarray(0, 0x300);
  return Math.round((header.readUInt32LE(0x260) / 2 ** 20) * 10) / 10;
}

/** Resident memory of process `pid` in MB (0 once it is gone). */
function rssMb(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match === null ? 0 : Number(match[1]) / 1024;
  } catch {
    return 0;
  }
}

/** The host's available memory (MemAvailable) in MB. */
function availableMb(): number {
  const match = /MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"));
  return match === null ? 0 : Number(match[1]) / 1024;
}

/** Boots `memoryMb` guests in waves until {@link DENSITY_MAX} are ready at once or one fails. */
async function density(memoryMb: number): Promise<{ ready: number; rss: number[] }> {
  const handles: VmHandle[] = [];
  let ready = 0;
  while (ready < DENSITY_MAX) {
    const size = Math.min(CONCURRENT, DENSITY_MAX - ready);
    const wave = await Promise.all(
      Array.from({ length: size }, (_, i) => boot(`dense-${ready + i}`, { ...spec, memoryMb })),
    );
    handles.push(...wave.map((w) => w.handle));
    const ok = wave.filter((w) => w.ms !== null).length;
    ready += ok;
    if (ok < wave.length) break;
  }
  const rss = handles.flatMap((h) => {
    const pid = h.observe().pid;
    return pid === null ? [] : [rssMb(pid)];
  });
  await Promise.all(handles.map((h) => stop(h)));
  return { ready, rss };
}

/** {@link MIGRATIONS} migrations of one guest of `vmSpec` back and forth between the drivers. */
async function migrations(
  name: string,
  vmSpec: VmSpec,
): Promise<{ downtimes: number[]; totals: number[]; toRunning: number[] }> {
  const downtimes: number[] = [];
  const totals: number[] = [];
  const toRunning: number[] = [];
  if (MIGRATIONS === 0) return { downtimes, totals, toRunning };
  const first = await boot(name, vmSpec);
  if (first.ms === null) throw new Error(`the guest to migrate (${name}) did not boot`);
  let current = first.handle;
  for (let i = 0; i < MIGRATIONS; i++) {
    const into = i % 2 === 0 ? otherDriver : driver;
    const moved = await migrateOnce(name, current, into, vmSpec);
    downtimes.push(moved.downtimeMs);
    totals.push(moved.totalMs);
    toRunning.push(moved.toRunningMs);
    current = moved.target;
  }
  await stop(current);
  return { downtimes, totals, toRunning };
}

try {
  const single: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const { ms, handle } = await boot(`single-${i}`);
    if (ms !== null) single.push(ms);
    await stop(handle);
  }
  const batch = await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => boot(`batch-${i}`)));
  const concurrent = batch.flatMap((b) => (b.ms === null ? [] : [b.ms]));
  await Promise.all(batch.map((b) => stop(b.handle)));

  const plain = await migrations("mover", spec);
  const withDisk =
    MIGRATION_DISK_GB > 0
      ? await migrations("disk-mover", { ...spec, diskGb: MIGRATION_DISK_GB })
      : { downtimes: [], totals: [], toRunning: [] };
  const { downtimes, totals, toRunning } = plain;

  const probe = await boot("probe-64mb", { ...spec, memoryMb: 64 }, probeDriver);
  await stop(probe.handle);
  const dense = DENSITY_MAX > 0 ? await density(DENSITY_MEMORY_MB) : { ready: 0, rss: [] };
  const rssP50 = percentile(dense.rss, 50);
  const headroomMb = availableMb();

  const result = {
    accel: ACCEL,
    migrationTls: MIGRATION_TLS,
    memoryMb: MEMORY_MB,
    runs: RUNS,
    bootToReadyMsP50: round(percentile(single, 50)),
    bootToReadyMsP99: round(percentile(single, 99)),
    concurrent: CONCURRENT,
    concurrent10BootToReadyMsP50: round(percentile(concurrent, 50)),
    concurrent10BootToReadyMsP99: round(percentile(concurrent, 99)),
    migrationDowntimeMs: round(percentile(downtimes, 50)),
    migrationTotalMs: round(percentile(totals, 50)),
    migrationDiskGb: MIGRATION_DISK_GB,
    migrationWithDiskDowntimeMs: round(percentile(withDisk.downtimes, 50)),
    migrationWithDiskTotalMs: round(percentile(withDisk.totals, 50)),
    density64MbGuests: probe.ms === null ? 0 : 1,
    densityMemoryMb: DENSITY_MEMORY_MB,
    densityGuests: dense.ready,
    densityQemuRssMbP50: rssP50 === null ? null : Math.round(rssP50),
    densityProjectedGuests: rssP50 === null ? null : Math.floor(headroomMb / rssP50),
  };
  process.stdout.write(
    [
      `accel ${ACCEL}, ${MEMORY_MB} MB guests`,
      `single boot-to-ready (${single.length}/${RUNS} ready): p50 ${result.bootToReadyMsP50} ms, p99 ${result.bootToReadyMsP99} ms`,
      `${CONCURRENT} at once (${concurrent.length} ready): p50 ${result.concurrent10BootToReadyMsP50} ms, p99 ${result.concurrent10BootToReadyMsP99} ms`,
      `single boots (ms): ${single.map((ms) => Math.round(ms)).join(", ")}`,
      `${downtimes.length} migrations (${MIGRATION_TLS ? "TLS" : "plain TCP"}) of a ${MEMORY_MB} MB guest: downtime p50 ${result.migrationDowntimeMs} ms ` +
        `(${downtimes.join(", ")}), total p50 ${result.migrationTotalMs} ms (${totals.join(", ")}), ` +
        `migrate to guest running here: ${toRunning.map((ms) => Math.round(ms)).join(", ")} ms`,
      `${withDisk.downtimes.length} migrations with a ${MIGRATION_DISK_GB} GB data disk: downtime p50 ` +
        `${result.migrationWithDiskDowntimeMs} ms (${withDisk.downtimes.join(", ")}), total p50 ` +
        `${result.migrationWithDiskTotalMs} ms (${withDisk.totals.join(", ")}), migrate to guest ` +
        `running here: ${withDisk.toRunning.map((ms) => Math.round(ms)).join(", ")} ms`,
      `a 64 MB guest: ${probe.ms === null ? "not ready" : `ready in ${Math.round(probe.ms)} ms`} ` +
        `(the kernel asks for ${kernelInitSizeMb()} MB above its 16 MB load address)`,
      `density: ${dense.ready} guests of ${DENSITY_MEMORY_MB} MB ready at once (cap ${DENSITY_MAX}), ` +
        `QEMU RSS p50 ${result.densityQemuRssMbP50} MB each; ${Math.round(headroomMb)} MB available ` +
        `would hold about ${result.densityProjectedGuests}`,
      "",
    ].join("\n"),
  );
  process.stdout.write(`BENCH_JSON ${JSON.stringify(result)}\n`);
} finally {
  await cleanup();
}
