/**
 * The work a worker runs on its own host, for both roles (a server that is also a worker, and an
 * agent-only worker): the process registry (a restarted worker first kills what its previous
 * life left running), the task runner inside its confinement (user, per-attempt directory,
 * cgroup) and the VM drivers (`process` only with `--enable-raw-exec`, `qemu`), all under
 * `<dataDir>/orchestrator/`. With the node's TLS, its certificate is written for QEMU to
 * `<dataDir>/orchestrator/migration-tls/` at each start (live migrations over mutual TLS); under
 * `--insecure` that directory is removed.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Clock } from "../../common/clock.js";
import { PermissionDeniedError } from "../../common/errors.js";
import type { NodeId } from "../../raft/types.js";
import type { TaskRunnerPort } from "../../orchestrator/agent/ports.js";
import { detectCgroups } from "../../orchestrator/confine/cgroups.js";
import { removeGroupTree } from "../../orchestrator/confine/stale-groups.js";
import { taskBaseEnv } from "../../orchestrator/confine/task-env.js";
import { TaskConfinement, type TaskSandbox } from "../../orchestrator/confine/task-sandbox.js";
import type { TaskUser } from "../../orchestrator/confine/task-user.js";
import {
  ProcessDriver,
  ProcessRegistry,
  QemuDriver,
  runTask,
  type VmDriverPort,
} from "../../orchestrator/drivers/index.js";
import type { LiveOutputHub } from "../../orchestrator/drivers/live-output.js";
import type { MigrationTls } from "../../orchestrator/drivers/qemu-migration-tls.js";
import { writeQemuTlsDir } from "../../orchestrator/drivers/qemu-tls-dir.js";
import type { TaskRun } from "../../orchestrator/drivers/task-runner.js";
import type { DetectedHost } from "../../orchestrator/host/index.js";
import { CGROUPS_FEATURE, RAW_EXEC_FEATURE } from "../../statemachine/orchestrator/features.js";
import { syntheticResult } from "../../statemachine/orchestrator/synthetic-result.js";
import type { VmDriver } from "../../statemachine/orchestrator/types.js";
import type { JsonLogger } from "../log.js";
import type { VmSettings } from "./vm-settings.js";

/** Whether this node runs raw work, and as whom. */
export type WorkloadSettings =
  | { readonly rawExec: false }
  | {
      /** `--enable-raw-exec`: tasks and process VMs run here. */
      readonly rawExec: true;
      /** The user they run as (resolved at start, see `confine/task-user.ts`). */
      readonly taskUser: TaskUser;
    };

/** What a node without `--enable-raw-exec` answers when raw work reaches it anyway. */
const RAW_EXEC_DISABLED =
  "raw exec is disabled on this node: start it with --enable-raw-exec to run tasks and process VMs";

/** Options of {@link openLocalDrivers}. */
export interface LocalDriverOptions {
  readonly nodeId: NodeId;
  readonly dataDir: string;
  readonly clock: Clock;
  readonly host: DetectedHost;
  readonly workloads: WorkloadSettings;
  /** qemu VM settings; default: images from anywhere, readiness not awaited. */
  readonly vm?: VmSettings;
  /** Where the output of running tasks goes for `task logs --follow` (servers only). */
  readonly liveOutput?: LiveOutputHub;
  readonly log: JsonLogger;
}

/** A worker's drivers, ready for an `Agent`. */
export interface LocalDrivers {
  readonly runTask: TaskRunnerPort;
  readonly vmDrivers: ReadonlyMap<VmDriver, VmDriverPort>;
  /** The host's features plus `raw_exec` and `cgroups` when they hold. */
  readonly features: readonly string[];
  /** Releases the confinement (after the agent stopped its work). */
  close(): Promise<void>;
}

/**
 * Kills what a previous life left running, then sets up confinement and drivers.
 * @throws the file system's or the cgroup setup's errors.
 */
export async function openLocalDrivers(options: LocalDriverOptions): Promise<LocalDrivers> {
  const { clock, log, workloads, nodeId } = options;
  const orchestratorDir = join(options.dataDir, "orchestrator");
  const registry = new ProcessRegistry(join(orchestratorDir, "processes"));
  await mkdir(registry.dir, { recursive: true, mode: 0o700 });
  const reaped = await registry.reapOrphans();
  if (reaped.length > 0) {
    log.warn("stopped processes a previous agent left running", {
      processes: reaped.map((r) => ({ key: r.record.key, pid: r.record.pid, action: r.action })),
    });
  }
  await mkdir(join(orchestratorDir, "work"), { recursive: true, mode: 0o700 });
  const migrationTls = await prepareMigrationTls(orchestratorDir, options.vm);
  const features = [...options.host.features];
  let confinement: TaskConfinement | undefined;
  // Tasks and QEMUs both run in groups of their own under the node's, where the host allows it.
  const cgroups = await detectCgroups({ nodeName: `node-${nodeId}-${process.pid}` });
  if (cgroups.enforced && cgroups.prunedStaleGroups > 0) {
    log.info("removed the cgroups of node processes that had exited", {
      groups: cgroups.prunedStaleGroups,
    });
  }
  if (workloads.rawExec) {
    confinement = await TaskConfinement.create(workloads.taskUser, cgroups);
    features.push(RAW_EXEC_FEATURE);
    if (cgroups.enforced) features.push(CGROUPS_FEATURE);
    log.warn("raw exec is enabled: this node runs tasks and process VMs as host processes", {
      taskUser: workloads.taskUser.name,
      uid: workloads.taskUser.uid,
      limits: cgroups.enforced
        ? `enforced (cgroup v${cgroups.layout.version})`
        : `NOT enforced: ${cgroups.reason}`,
    });
  }
  const vmDrivers = new Map<VmDriver, VmDriverPort>([
    [
      "process",
      workloads.rawExec && confinement !== undefined
        ? new ProcessDriver({
            clock,
            registry,
            logDir: join(orchestratorDir, "vm-logs"),
            workDir: await confinement.sharedDir("vms"),
            baseEnv: taskBaseEnv({
              dir: join(confinement.root, "vms"),
              userName: workloads.taskUser.name,
            }),
            ...(workloads.taskUser.switches
              ? { user: { uid: workloads.taskUser.uid, gid: workloads.taskUser.gid } }
              : {}),
          })
        : refusingDriver(),
    ],
    [
      "qemu",
      new QemuDriver({
        clock,
        registry,
        // KVM only where the host probe booted a guest under it (see kvm-boot-probe.ts).
        accel: options.host.probe.kvm ? "kvm" : "tcg",
        ...(options.vm?.imageDir === undefined ? {} : { imageDir: options.vm.imageDir }),
        ...(options.vm === undefined ? {} : { readyTimeoutMs: options.vm.readyTimeoutMs }),
        ...(options.vm?.migrationHost === undefined
          ? {}
          : { migrationHost: options.vm.migrationHost }),
        ...(migrationTls === undefined ? {} : { migrationTls }),
        warn: (message, fields) => log.warn(message, fields),
        logDir: join(orchestratorDir, "vm-logs"),
        runDir: join(orchestratorDir, "run"),
        // Each VM's overlay over its read-only base image, kept until the VM is deleted.
        diskDir: join(orchestratorDir, "disks"),
        // Each QEMU in a group of its own, with the VM's vCPUs and memory as hard limits.
        cgroups,
      }),
    ],
  ]);
  const runTaskHere: TaskRunnerPort = async (spec, run) => {
    // Defence in depth: the scheduler never places raw work here without raw_exec.
    if (confinement === undefined) return refusedRun(RAW_EXEC_DISABLED);
    const name = `task-${run.taskId}-${run.attempt}`;
    let sandbox: TaskSandbox;
    try {
      sandbox = await confinement.prepare(name, spec.resources);
    } catch (error) {
      return refusedRun(`could not prepare the task's sandbox: ${(error as Error).message}`);
    }
    const live = options.liveOutput?.open(run.taskId, run.attempt);
    try {
      return await runTask(spec, {
        clock,
        defaultCwd: sandbox.dir,
        signal: run.signal,
        onStarted: () => run.onStarted(),
        registration: { registry, key: `task-${crypto.randomUUID()}` },
        sandbox,
        ...(live === undefined ? {} : { onOutput: (stream, chunk) => live.push(stream, chunk) }),
      });
    } finally {
      live?.end();
      await sandbox.release();
    }
  };
  return {
    runTask: runTaskHere,
    vmDrivers,
    features,
    close: async () => {
      await confinement?.close();
      // This node's own groups, empty once its work stopped (the next start removes them if not).
      if (cgroups.enforced) {
        const { cpuDir, memoryDir } = cgroups.layout;
        await removeGroupTree(cpuDir);
        if (memoryDir !== cpuDir) await removeGroupTree(memoryDir);
      }
    },
  };
}

/** Where a node's QEMUs read its certificate, under `<dataDir>/orchestrator/`. */
const MIGRATION_TLS_DIR = "migration-tls";

/**
 * Writes the node's certificate for QEMU (see `qemu-tls-dir.ts`) and returns the driver's
 * setting; without TLS, removes what an earlier start with TLS wrote (a copy of the key).
 */
async function prepareMigrationTls(
  orchestratorDir: string,
  vm: VmSettings | undefined,
): Promise<MigrationTls | undefined> {
  const dir = join(orchestratorDir, MIGRATION_TLS_DIR);
  const tls = vm?.migrationTls;
  if (tls === undefined) {
    await rm(dir, { recursive: true, force: true });
    return undefined;
  }
  writeQemuTlsDir(dir, tls);
  return { dir, clusterId: tls.clusterId };
}

/** A failed run that never started (raw exec off, no sandbox). */
function refusedRun(error: string): TaskRun {
  return { outcome: "failed", result: syntheticResult(error) };
}

/** The process driver of a node without raw exec: every start is refused, saying why. */
function refusingDriver(): VmDriverPort {
  return {
    kind: "process",
    start: () => {
      throw new PermissionDeniedError(RAW_EXEC_DISABLED);
    },
  };
}
