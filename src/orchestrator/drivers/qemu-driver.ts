/**
 * The `qemu` VM driver: runs `qemu-system-x86_64 -M microvm` from the spec's kernel (and initrd)
 * or disk image, supervised like a process VM (issue 7, item 5).
 *
 * A run is started once QEMU's QMP monitor has answered the handshake, so a QEMU that dies at
 * start (bad image, KVM refused) is a failed start whose error quotes QEMU's last words. With a
 * `readyTimeoutMs` (the node's default) a kernel VM is then `booting` until its guest prints
 * `BLIXARD-READY <nonce>` on the serial console (see `guest-ready.ts`), and `running` after; a
 * guest silent past the timeout is killed and the run fails with the last console lines, so the
 * restart policy applies. With an `imageDir`, kernels, initrds and disk images are only taken
 * from inside it (resolved, symlinks followed): a spec naming any other file is refused. With a
 * `diskDir`, a base image is never opened for writing: each VM runs on its own qcow2 overlay (and
 * `diskGb` gives a blank data disk), kept across runs until `discard` (see `qemu-disks.ts`). The
 * guest's serial console and QEMU's own messages go to `<logDir>/<name>.log` (rotated at a cap);
 * QMP events are noted there too. A stop asks the guest to power off (`system_powerdown`), waits
 * up to the grace period, then tells QEMU to `quit`, and kills it (SIGKILL) if that fails too.
 * A guest that powers itself off ends the run with exit code 0: the VM is then `stopped`, as a
 * process VM that exits cleanly is.
 *
 * A kernel VM also gets the guest agent's channel (a virtio-serial port, `<runDir>/<name>.agent`
 * on the host, see `guest-agent-protocol.ts`): {@link QemuDriver.exec} runs a command in the
 * guest through it. A spec's health check (see `health-check.ts`) starts once the guest is ready:
 * a TCP probe goes through the VM's published port for that guest port, else through a forward of
 * its own on 127.0.0.1 with a port the kernel picks (read back with `info usernet`); a command
 * probe goes through the guest agent.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants, mkdirSync } from "node:fs";
import { access, readFile, realpath, rm } from "node:fs/promises";
import { join, sep } from "node:path";
import type { Clock } from "../../common/clock.js";
import {
  CancelledError,
  InvalidArgumentError,
  NotFoundError,
  TimeoutError,
  UnavailableError,
} from "../../common/errors.js";
import type { VmSpec } from "../../statemachine/orchestrator/types.js";
import type { CgroupDetection } from "../confine/cgroups.js";
import { kvmUsable } from "../host/probe.js";
import { minimalEnv } from "./child-env.js";
import {
  DEFAULT_QEMU_POWERDOWN_GRACE_MS,
  DEFAULT_QEMU_START_TIMEOUT_MS,
  DEFAULT_VM_LOG_MAX_BYTES,
  OUTPUT_DRAIN_TIMEOUT_MS,
  OUTPUT_TAIL_BYTES,
  QEMU_QUIT_TIMEOUT_MS,
  QMP_CONNECT_RETRY_FIRST_MS,
  QMP_CONNECT_RETRY_MAX_MS,
} from "./limits.js";
import { OutputTail } from "./output-capture.js";
import { findParentDeathHelper, PARENT_DEATH_HELPER } from "./parent-death.js";
import {
  describeExit,
  signalGroup,
  spawnGroup,
  terminateGroup,
  type GroupProcess,
} from "./process-group.js";
import { buildQemuArgs, QEMU_BINARY, type QemuAccelerator } from "./qemu-args.js";
import { GuestAgentClient, type GuestExecRequest } from "./guest-agent-client.js";
import type { GuestExecResult } from "./guest-agent-protocol.js";
import { GuestReadyWatcher, NONCE_PARAMETER } from "./guest-ready.js";
import { watchHealth, type HealthProbe } from "./health-check.js";
import { commandProbe, localForwardPorts, tcpProbe } from "./health-probes.js";
import { QemuDisks } from "./qemu-disks.js";
import {
  createQemuCgroup,
  QEMU_MEMORY_OVERHEAD_MB,
  qemuGroupName,
  qemuLimits,
} from "./qemu-cgroup.js";
import {
  awaitIncomingRun,
  listenForMigration,
  resumeAfterMigration,
  sendMigration,
} from "./qemu-migration.js";
import { closeDiskExport, exportDiskForMigration } from "./qemu-disk-migration.js";
import {
  addClientTls,
  addServerTls,
  removeTlsObjects,
  type ClientTls,
  type MigrationTls,
} from "./qemu-migration-tls.js";
import { QmpClient } from "./qmp.js";
import { RotatingLog } from "./rotating-log.js";
import { Supervisor, type Launcher, type LaunchedRun } from "./supervisor.js";
import { delay, within } from "./timing.js";
import {
  checkVmName,
  type VmDriverCommonOptions,
  type VmDriverPort,
  type VmHandle,
  type VmStartRequest,
  type VmStopMethod,
} from "./vm-driver.js";

/** How the qemu driver runs VMs. */
export interface QemuDriverOptions extends VmDriverCommonOptions {
  /** Time for grace periods, timeouts and restart backoff. */
  readonly clock: Clock;
  /**
   * Where the QMP sockets (`<name>.qmp`) go; created when missing. Keep it short: a unix socket
   * path holds at most 107 bytes.
   */
  readonly runDir: string;
  /** Where `<name>.log` (serial console and QEMU's messages, rotated) goes; created when missing. */
  readonly logDir: string;
  /** The QEMU binary (a path, or a name looked up on PATH). Default `qemu-system-x86_64`. */
  readonly binary?: string;
  /** `kvm`, `tcg`, or `auto`: KVM when the KVM device is usable. Default `auto`. */
  readonly accel?: "auto" | QemuAccelerator;
  /** The KVM device `auto` looks at. Default `/dev/kvm`. */
  readonly kvmDevice?: string;
  /** The CPU model under KVM. Default `host`. */
  readonly cpuModel?: string;
  /** How long a guest may take to power off before `quit`. Default {@link DEFAULT_QEMU_POWERDOWN_GRACE_MS}. */
  readonly powerdownGraceMs?: number;
  /** How long QEMU may take to exit after `quit` (or SIGTERM) before SIGKILL. Default {@link QEMU_QUIT_TIMEOUT_MS}. */
  readonly quitTimeoutMs?: number;
  /** How long QEMU may take to answer on QMP after it was spawned. Default {@link DEFAULT_QEMU_START_TIMEOUT_MS}. */
  readonly startTimeoutMs?: number;
  /** Bytes of a log file before it is rotated. Default {@link DEFAULT_VM_LOG_MAX_BYTES}. */
  readonly logMaxBytes?: number;
  /** QEMU's environment. Default {@link minimalEnv}: the agent's PATH and HOME. */
  readonly baseEnv?: Readonly<Record<string, string>>;
  /**
   * How long a kernel VM's guest may take, from its monitor answering, to print its readiness line; 0 or omitted:
   * readiness is not awaited (the VM is running once QMP answers).
   */
  readonly readyTimeoutMs?: number;
  /**
   * The only directory kernels, initrds and disk images may come from (after resolving
   * symlinks); omitted: any readable file (trusted single-user setups and tests).
   */
  readonly imageDir?: string;
  /**
   * Where each VM's own disk (qcow2 overlay over its base image, or blank data disk of `diskGb`)
   * is kept, see `qemu-disks.ts`; omitted: a base image is attached read-only and `diskGb` gives
   * no disk.
   */
  readonly diskDir?: string;
  /** The qemu-img binary. Default `qemu-img`. */
  readonly qemuImg?: string;
  /**
   * The node's cgroups: where limits are enforced, each QEMU runs in a group of its own with the
   * VM's vCPUs and memory (plus QEMU's overhead) as hard limits (see `qemu-cgroup.ts`); omitted
   * or not enforced: QEMU runs in the node's own group.
   */
  readonly cgroups?: CgroupDetection;
  /**
   * The address an incoming migration listens on, which the source must reach: the node's peer
   * listen host. Default `127.0.0.1` (nodes of one machine).
   */
  readonly migrationHost?: string;
  /**
   * How long a live migration may take, at either end: the source cancels it after this, the
   * target gives up waiting for the stream. Default {@link DEFAULT_MIGRATION_TIMEOUT_MS}.
   */
  readonly migrationTimeoutMs?: number;
  /**
   * This node's TLS for live migrations (its certificate in QEMU's form, see
   * `qemu-migration-tls.ts`): the stream and the disk go over mutual TLS, only between nodes of
   * the cluster, to the node chosen. Omitted (`--insecure`): plain TCP, each migration warned
   * about.
   */
  readonly migrationTls?: MigrationTls;
  /** Where warnings for the node's log go (an insecure migration). Default: nowhere. */
  readonly warn?: (message: string, fields: Readonly<Record<string, unknown>>) => void;
}

/** What an insecure node warns at each migration, at both ends. */
export const PLAIN_MIGRATION_WARNING =
  "live migration without TLS (--insecure): the guest's memory and disk cross the network " +
  "unencrypted, and anyone who reaches the target's port first can feed it a guest";

/** A live migration's time limit by default: generous for TCG on a busy host. */
export const DEFAULT_MIGRATION_TIMEOUT_MS = 120_000;

/** What the driver keeps about a VM's current run for {@link QemuDriver.exec}. */
interface LiveRun {
  /** Its guest agent channel, if the connection was made. */
  readonly agent: GuestAgentClient | undefined;
  /** True once the guest announced readiness (or at once when readiness is not awaited). */
  ready: boolean;
}

/** Runs VMs whose driver is `qemu`. */
export class QemuDriver implements VmDriverPort {
  readonly kind = "qemu" as const;

  readonly #disks: QemuDisks | undefined;
  readonly #runs = new Map<string, LiveRun>();

  constructor(private readonly options: QemuDriverOptions) {
    this.#disks =
      options.diskDir === undefined
        ? undefined
        : new QemuDisks({
            diskDir: options.diskDir,
            ...(options.imageDir === undefined ? {} : { imageDir: options.imageDir }),
            ...(options.qemuImg === undefined ? {} : { qemuImg: options.qemuImg }),
          });
  }

  /** Deletes VM `name`'s disk (call only once it no longer runs here and the disk is not its current one). */
  async discard(name: string): Promise<void> {
    checkVmName(name);
    await this.#disks?.discard(name);
  }

  /**
   * Runs `request.command` in VM `name`'s guest through its agent (see `guest-agent-client.ts`).
   * @throws UnavailableError when the VM does not run here, is still booting, or has no agent
   *   channel; the client's errors otherwise (TimeoutError when the guest does not answer).
   */
  exec(name: string, request: GuestExecRequest): Promise<GuestExecResult> {
    const run = this.#runs.get(name);
    if (run === undefined) {
      return Promise.reject(new UnavailableError(`VM ${name} does not run on this node now`));
    }
    if (!run.ready) {
      return Promise.reject(
        new UnavailableError(`VM ${name} is still booting; try again once it is running`),
      );
    }
    if (run.agent === undefined) {
      return Promise.reject(
        new UnavailableError(
          `VM ${name} has no guest agent channel (only a VM booting a kernel has one; see its log)`,
        ),
      );
    }
    return run.agent.exec(request);
  }

  /** The VMs that have a disk on this node. Throws nothing. */
  async storedNames(): Promise<string[]> {
    return (await this.#disks?.names()) ?? [];
  }

  /**
   * Starts supervising a QEMU for `request.spec`.
   * @throws InvalidArgumentError for a bad name, another driver's spec, or a spec QEMU cannot
   *   run (see `buildQemuArgs`); files that are named but missing fail the start instead.
   */
  start(request: VmStartRequest): VmHandle {
    return this.supervise(request, false);
  }

  /**
   * Starts a VM that arrives by live migration (see `VmDriverPort.startIncoming` and
   * `qemu-migration.ts`): its first run waits for the stream; later runs boot afresh.
   * @throws InvalidArgumentError as {@link start} does.
   */
  startIncoming(request: VmStartRequest): VmHandle {
    return this.supervise(request, true);
  }

  private supervise(request: VmStartRequest, incoming: boolean): VmHandle {
    const { name, spec } = request;
    checkVmName(name);
    if (spec.driver !== "qemu") {
      throw new InvalidArgumentError(
        `VM ${name} uses the ${spec.driver} driver; the qemu driver cannot run it`,
      );
    }
    const { runDir, logDir, clock } = this.options;
    const qmpSocketPath = join(runDir, `${name}.qmp`);
    if (spec.health !== undefined && spec.kernel === "") {
      throw new InvalidArgumentError(
        `VM ${name}: a health check needs a VM that boots a kernel (its network and guest agent); this one boots only a disk image`,
      );
    }
    // Validates the spec now, so a bad one is refused before anything starts.
    buildQemuArgs({
      name,
      spec,
      accel: "tcg",
      qmpSocketPath,
      ...(spec.kernel === "" ? {} : { agentSocketPath: join(runDir, `${name}.agent`) }),
    });
    mkdirSync(runDir, { recursive: true });
    mkdirSync(logDir, { recursive: true });
    const log = new RotatingLog(
      join(logDir, `${name}.log`),
      this.options.logMaxBytes ?? DEFAULT_VM_LOG_MAX_BYTES,
    );
    const note = (line: string): void => log.line(`[blixard ${new Date().toISOString()}] ${line}`);
    let firstRun = true;
    const launcher: Launcher = {
      note,
      close: () => log.finish(),
      launch: (signal) => {
        const run = {
          ...{ name, spec, qmpSocketPath, log, note, signal },
          incoming: incoming && firstRun,
          // An incoming VM's disk is the source's copy; a stale one never serves it.
          freshDisk: firstRun && (incoming || request.freshDisk === true),
          sourceNodeId: request.sourceNodeId,
        };
        firstRun = false;
        return this.launch(run);
      },
    };
    return new Supervisor({
      name,
      policy: spec.restart,
      clock,
      launcher,
      onChange: request.onChange,
      previousRestarts: request.previousRestarts ?? 0,
      defaultGraceMs: this.options.powerdownGraceMs ?? DEFAULT_QEMU_POWERDOWN_GRACE_MS,
      incoming,
    });
  }

  private async launch(run: {
    name: string;
    spec: VmSpec;
    qmpSocketPath: string;
    log: RotatingLog;
    note: (line: string) => void;
    signal: AbortSignal;
    /** The run waits for a migration stream instead of booting. */
    incoming: boolean;
    /** A disk kept here is discarded first (see `VmStartRequest.freshDisk`). */
    freshDisk: boolean;
    /** The node an incoming VM comes from (see `VmStartRequest.sourceNodeId`). */
    sourceNodeId?: number | undefined;
  }): Promise<LaunchedRun> {
    const { name, spec, qmpSocketPath, log, note, signal, incoming, freshDisk, sourceNodeId } = run;
    const { clock, registry } = this.options;
    const agentSocketPath =
      spec.kernel === "" ? undefined : join(this.options.runDir, `${name}.agent`);
    // A TCP health check goes through the VM's published port for it, else a forward of its own.
    const healthPort = spec.health?.tcpPort ?? 0;
    const publishedHealthPort = spec.publish?.find((p) => p.guestPort === healthPort)?.hostPort;
    const localForwards = healthPort > 0 && publishedHealthPort === undefined ? [healthPort] : [];
    if (signal.aborted) throw new CancelledError(`VM ${name} was stopped before it started`);
    await checkReadable(name, spec);
    await this.checkInImageDir(name, spec);
    const disk = await this.#disks?.prepare(name, spec, freshDisk);
    // An incoming VM's own disk is copied from the source (see `qemu-disk-migration.ts`).
    const incomingDisk = incoming && disk !== undefined && !disk.readOnly;
    if (disk !== undefined) note(`disk ${disk.path}`);
    const accel = await this.accelerator();
    const readyTimeoutMs = this.options.readyTimeoutMs ?? 0;
    // An incoming guest booted on its source: it announces nothing here; it is ready once it runs.
    const awaitReady = readyTimeoutMs > 0 && spec.kernel !== "" && !incoming;
    const nonce = randomBytes(8).toString("hex");
    const cpuModel =
      this.options.cpuModel ?? (accel === "kvm" ? await this.kvmCpuModel(note) : undefined);
    const args = buildQemuArgs({
      name,
      spec,
      accel,
      qmpSocketPath,
      ...(agentSocketPath === undefined ? {} : { agentSocketPath }),
      ...(disk === undefined ? {} : { disk }),
      ...(cpuModel === undefined ? {} : { cpuModel }),
      extraCmdline: [
        ...(accel === "tcg" && spec.kernel !== "" ? await tscParameter() : []),
        ...(awaitReady ? [`${NONCE_PARAMETER}=${nonce}`] : []),
      ].join(" "),
      ...(spec.kernel !== "" ? { network: { publish: spec.publish ?? [], localForwards } } : {}),
    });
    // With a disk the guest waits paused after the stream until the disk's export is closed.
    if (incoming) args.push("-incoming", "defer", ...(incomingDisk ? ["-S"] : []));
    // A socket file left by a QEMU that was killed would only refuse connections.
    await rm(qmpSocketPath, { force: true });
    if (agentSocketPath !== undefined) await rm(agentSocketPath, { force: true });
    const binary = this.options.binary ?? QEMU_BINARY;
    const cgroup = await createQemuCgroup(this.options.cgroups, name, spec);
    if (cgroup !== undefined) {
      const { cpuMillis, memoryMb } = qemuLimits(spec);
      note(`cgroup ${qemuGroupName(name)}: ${cpuMillis} millicores, ${memoryMb} MB`);
    }
    // A QEMU that outlived a killed node would run beside the copy the cluster boots elsewhere.
    const parentDeathHelper = await findParentDeathHelper();
    if (parentDeathHelper === null) {
      note(
        `${PARENT_DEATH_HELPER} (util-linux) is not on PATH: if this node is killed, QEMU runs on until the node starts again`,
      );
    }
    note(`starting ${binary} ${args.join(" ")}`);
    let proc: GroupProcess;
    try {
      proc = await spawnGroup(binary, args, {
        cwd: this.options.runDir,
        env: this.options.baseEnv ?? minimalEnv(),
        output: "pipe",
        // Held until it is in its group: no instruction of the guest runs outside its limits.
        hold: cgroup !== undefined,
        ...(parentDeathHelper === null ? {} : { parentDeathHelper }),
      });
      if (cgroup !== undefined) {
        await cgroup.join(proc.pid).catch(async (error: unknown) => {
          signalGroup(proc.pid, "SIGKILL");
          throw new UnavailableError(
            `could not put QEMU in its cgroup: ${(error as Error).message}`,
            { cause: error },
          );
        });
        proc.release();
      }
    } catch (error) {
      await cgroup?.remove().catch(() => undefined);
      throw error;
    }
    const tail = new OutputTail(OUTPUT_TAIL_BYTES);
    let markReady = (): void => undefined;
    const readySeen = new Promise<void>((resolve) => (markReady = resolve));
    const watcher = new GuestReadyWatcher(nonce, () => markReady());
    if (awaitReady) proc.stdout?.on("data", (chunk: Uint8Array) => watcher.push(chunk));
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.on("data", (chunk: Uint8Array) => tail.push(chunk));
    proc.stderr?.pipe(log, { end: false });
    const registryKey = `vm-${name}`;
    const recorded = registry
      ?.record(registryKey, proc.pid, binary)
      .catch((error: unknown) => note(`could not record pid ${proc.pid}: ${String(error)}`));

    let qmp: QmpClient | undefined;
    // Set once the agent channel is up; the exit handler may run before that.
    const live: { run?: LiveRun } = {};
    const exited = proc.exited.then(async (status) => {
      qmp?.close();
      live.run?.agent?.close();
      if (live.run !== undefined && this.#runs.get(name) === live.run) this.#runs.delete(name);
      if (agentSocketPath !== undefined)
        await rm(agentSocketPath, { force: true }).catch(() => undefined);
      if (!(await within(clock, proc.closed, OUTPUT_DRAIN_TIMEOUT_MS)).inTime) {
        proc.stdout?.destroy();
        proc.stderr?.destroy();
      }
      await rm(qmpSocketPath, { force: true }).catch(() => undefined);
      if (cgroup !== undefined) {
        if (await cgroup.oomKilled()) {
          note(
            `QEMU was killed by the kernel's OOM killer: it reached its cgroup's memory limit ` +
              `(${qemuLimits(spec).memoryMb} MB: the VM's memory plus ${QEMU_MEMORY_OVERHEAD_MB} MB for QEMU)`,
          );
        }
        await cgroup
          .remove()
          .catch((error: unknown) => note(`could not remove the cgroup: ${String(error)}`));
      }
      await recorded;
      await registry?.forget(registryKey).catch(() => undefined);
      return status;
    });

    try {
      qmp = await this.connectWhenReady(proc, qmpSocketPath, signal);
    } catch (error) {
      signalGroup(proc.pid, "SIGKILL");
      const status = await exited;
      if (error instanceof CancelledError) throw error;
      const last = tail.text();
      const words = last === "" ? "" : `: ${last}`;
      if (error instanceof QemuExitedError) {
        throw new UnavailableError(
          `QEMU ${describeExit(status)} before its monitor answered${words}`,
        );
      }
      throw new (error instanceof TimeoutError ? TimeoutError : UnavailableError)(
        `${(error as Error).message}; QEMU was killed${words}`,
        { cause: error },
      );
    }
    const client = qmp;
    client.onEvent((event) => note(`qmp event ${event.event} ${JSON.stringify(event.data)}`));
    note(`QMP ready (accel ${accel})`);
    const agent =
      agentSocketPath === undefined
        ? undefined
        : await GuestAgentClient.connect(agentSocketPath, clock).catch((error: unknown) => {
            note(`no guest agent channel: ${(error as Error).message}`);
            return undefined;
          });
    let incomingUri: string | undefined;
    let incomingDiskUri: string | undefined;
    if (incoming) {
      try {
        const host = this.options.migrationHost ?? "127.0.0.1";
        const tls = this.options.migrationTls;
        const serverTls =
          tls === undefined
            ? undefined
            : await addServerTls(client, {
                ...tls,
                ...(sourceNodeId === undefined ? {} : { sourceNodeId }),
              });
        if (serverTls === undefined) this.warnPlain(name, "incoming", note);
        incomingUri = await listenForMigration(client, host, serverTls);
        if (incomingDisk) {
          incomingDiskUri = await exportDiskForMigration(client, host, serverTls);
        }
        const from = sourceNodeId === undefined ? "a node of the cluster" : `node ${sourceNodeId}`;
        note(
          `waiting for the migration stream on ${incomingUri}` +
            (incomingDiskUri === undefined ? "" : ` and the disk on ${incomingDiskUri}`) +
            (serverTls === undefined ? " (plain TCP)" : ` (TLS, from ${from})`),
        );
      } catch (error) {
        signalGroup(proc.pid, "SIGKILL");
        await exited;
        agent?.close();
        throw error;
      }
    }
    const migrationTimeoutMs = this.options.migrationTimeoutMs ?? DEFAULT_MIGRATION_TIMEOUT_MS;
    const current: LiveRun = { agent, ready: !awaitReady && !incoming };
    live.run = current;
    if (!proc.hasExited()) this.#runs.set(name, current);
    else agent?.close();
    const healthProbe =
      spec.health === undefined
        ? undefined
        : await this.healthProbe(spec, client, publishedHealthPort, () => current.agent, note);
    const ready = incoming
      ? awaitIncomingRun(
          client,
          clock,
          migrationTimeoutMs,
          exited,
          incomingDisk ? () => closeDiskExport(client) : undefined,
        ).then(() => {
          current.ready = true;
          note("migration completed; the guest runs here");
        })
      : awaitReady
        ? within(clock, readySeen, readyTimeoutMs).then(({ inTime }) => {
            if (!inTime) {
              throw new TimeoutError(
                `the guest did not announce readiness within ${readyTimeoutMs} ms (accel ${accel}); last console lines: ${watcher.tail() || "(none)"}`,
              );
            }
            current.ready = true;
            note(`guest ready (accel ${accel})`);
          })
        : undefined;
    const health = spec.health;
    let migratedAway = false;
    return {
      ...(ready === undefined ? {} : { ready }),
      ...(health === undefined || healthProbe === undefined
        ? {}
        : {
            watchHealth: (onChange) =>
              watchHealth({
                clock,
                check: health,
                probe: notingFirstPass(healthProbe, note),
                onChange,
              }),
          }),
      pid: proc.pid,
      exited,
      ...(incomingUri === undefined ? {} : { incomingUri }),
      ...(incomingDiskUri === undefined ? {} : { incomingDiskUri }),
      migrate: async ({ uri, diskUri, nodeId }) => {
        const ownDisk = disk !== undefined && !disk.readOnly;
        if (ownDisk && diskUri === undefined) {
          throw new UnavailableError(
            `VM ${name} has a disk on this node and the target offers no copy of it (its agent runs an older release)`,
          );
        }
        const tls = this.options.migrationTls;
        note(
          `migrating to node ${nodeId} at ${uri}${ownDisk ? ` with the disk to ${diskUri}` : ""}` +
            (tls === undefined ? " (plain TCP)" : " (TLS)"),
        );
        if (tls === undefined) this.warnPlain(name, "outgoing", note);
        let clientTls: ClientTls | undefined;
        try {
          clientTls = tls === undefined ? undefined : await addClientTls(client, tls, nodeId);
          const stats = await sendMigration(client, clock, {
            uri,
            timeoutMs: migrationTimeoutMs,
            ...(ownDisk && diskUri !== undefined ? { diskUri } : {}),
            ...(clientTls === undefined ? {} : { tls: clientTls }),
          });
          migratedAway = true;
          note(
            `migration completed: ${stats.totalMs} ms, downtime ${stats.downtimeMs} ms, ` +
              `${stats.transferredBytes} bytes; the guest is paused here`,
          );
          return stats;
        } catch (error) {
          note(`migration failed: ${(error as Error).message}; the guest runs on here`);
          throw error;
        } finally {
          if (clientTls !== undefined) await removeTlsObjects(client, [clientTls.creds]);
        }
      },
      resume: async () => {
        if (!migratedAway) return;
        await resumeAfterMigration(client);
        migratedAway = false;
        note("the target did not take the guest; it runs here again");
      },
      stop: async (graceMs) => {
        // A guest that moved away is paused: it cannot power off, so quit at once.
        const method = await this.stopQemu(proc, client, migratedAway ? 0 : graceMs, note);
        await exited;
        return method;
      },
    };
  }

  /** Says in the VM's log and the node's that a migration of VM `name` goes unencrypted. */
  private warnPlain(
    name: string,
    direction: "incoming" | "outgoing",
    note: (line: string) => void,
  ) {
    note(`WARNING: ${PLAIN_MIGRATION_WARNING}`);
    this.options.warn?.(PLAIN_MIGRATION_WARNING, { vm: name, direction });
  }

  /**
   * The probe of `spec.health`: a command through the guest agent, or a TCP connection to the
   * VM's published port for the guest port or, else, to its own forward (whose host port QEMU
   * chose: read back from `info usernet`). A forward that cannot be found makes a probe that
   * always fails, saying why (the VM is then reported unhealthy rather than wrongly healthy).
   */
  private async healthProbe(
    spec: VmSpec,
    qmp: QmpClient,
    publishedPort: number | undefined,
    agent: () => GuestAgentClient | undefined,
    note: (line: string) => void,
  ): Promise<HealthProbe | undefined> {
    const { clock } = this.options;
    const health = spec.health;
    if (health === undefined) return undefined;
    if (health.command !== "") {
      return commandProbe({ agent, command: health.command, timeoutMs: health.timeoutMs });
    }
    const guestPort = health.tcpPort;
    let hostPort = publishedPort;
    if (hostPort === undefined) {
      try {
        const usernet = await qmp.execute("human-monitor-command", {
          "command-line": "info usernet",
        });
        hostPort = localForwardPorts(typeof usernet === "string" ? usernet : "").get(guestPort);
      } catch (error) {
        note(`could not read the health check's forward: ${(error as Error).message}`);
      }
    }
    if (hostPort === undefined) {
      const reason = `tcp guest port ${guestPort}: the node's forward to it was not found`;
      note(reason);
      return () => Promise.reject(new Error(reason));
    }
    note(`health check: tcp guest port ${guestPort} through 127.0.0.1:${hostPort}`);
    return tcpProbe({ clock, hostPort, guestPort, timeoutMs: health.timeoutMs });
  }

  /**
   * `-cpu host` under KVM, unless this host's KVM cannot run it: under nested virtualization
   * QEMU can abort at reset ("failed to set MSR") with the host model while its default model
   * runs. Probed once per driver with a paused microVM that must survive a moment.
   */
  private kvmCpuModel(note: (line: string) => void): Promise<string> {
    this.#kvmCpuModel ??= probeHostCpuModel(this.options.binary ?? QEMU_BINARY).then((works) => {
      if (!works) note("KVM cannot run -cpu host on this host; using QEMU's default CPU model");
      return works ? "host" : "";
    });
    return this.#kvmCpuModel;
  }

  #kvmCpuModel: Promise<string> | undefined;

  /**
   * With an image directory, every file of the spec must resolve inside it.
   * @throws InvalidArgumentError naming the file and the directory.
   */
  private async checkInImageDir(name: string, spec: VmSpec): Promise<void> {
    const { imageDir } = this.options;
    if (imageDir === undefined) return;
    const dir = await realpath(imageDir);
    for (const [what, path] of [
      ["kernel", spec.kernel],
      ["initrd", spec.initrd],
      ["disk image", spec.image],
    ] as const) {
      if (path === "") continue;
      const resolved = await realpath(path);
      if (!isInside(dir, resolved)) {
        throw new InvalidArgumentError(
          `VM ${name}: the ${what} ${path} is outside this node's VM image directory ${dir}; put the file there (--vm-image-dir) and name it by its path inside`,
        );
      }
    }
  }

  private async accelerator(): Promise<QemuAccelerator> {
    const accel = this.options.accel ?? "auto";
    if (accel !== "auto") return accel;
    return (await kvmUsable(this.options.kvmDevice)) ? "kvm" : "tcg";
  }

  /**
   * Connects to the monitor of a QEMU that is starting: its socket appears some time after the
   * spawn, so connection failures are retried (with a doubling pause) until the start timeout,
   * the process's exit or an abort.
   */
  private async connectWhenReady(
    proc: GroupProcess,
    path: string,
    signal: AbortSignal,
  ): Promise<QmpClient> {
    const { clock } = this.options;
    const timeoutMs = this.options.startTimeoutMs ?? DEFAULT_QEMU_START_TIMEOUT_MS;
    const deadline = clock.now() + timeoutMs;
    // Aborted by the stop signal or by the process's exit, whichever comes first.
    const giveUp = new AbortController();
    const onAbort = (): void => giveUp.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    void proc.exited.then(() => giveUp.abort());
    try {
      let pauseMs = QMP_CONNECT_RETRY_FIRST_MS;
      for (;;) {
        if (proc.hasExited()) throw new QemuExitedError();
        if (signal.aborted) throw new CancelledError(`the start of QEMU at ${path} was cancelled`);
        const remainingMs = deadline - clock.now();
        if (remainingMs <= 0) {
          throw new TimeoutError(`QEMU did not answer on ${path} within ${timeoutMs} ms`);
        }
        try {
          return await QmpClient.connect(path, {
            clock,
            timeoutMs: remainingMs,
            signal: giveUp.signal,
          });
        } catch (error) {
          if (proc.hasExited()) throw new QemuExitedError();
          // Missing or refusing sockets (not listening yet) and connections reset by a QEMU that
          // is dying are retried: the next turn sees the exit and reports QEMU's own words.
          if (!(error instanceof CancelledError) && !(error instanceof UnavailableError))
            throw error;
        }
        await delay(clock, Math.min(pauseMs, Math.max(1, deadline - clock.now())), giveUp.signal);
        pauseMs = Math.min(pauseMs * 2, QMP_CONNECT_RETRY_MAX_MS);
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** `system_powerdown`, wait; `quit`, wait; SIGKILL. Without a monitor: SIGTERM, wait; SIGKILL. */
  private async stopQemu(
    proc: GroupProcess,
    qmp: QmpClient,
    graceMs: number,
    note: (line: string) => void,
  ): Promise<VmStopMethod> {
    const { clock } = this.options;
    const quitTimeoutMs = this.options.quitTimeoutMs ?? QEMU_QUIT_TIMEOUT_MS;
    if (proc.hasExited()) return "exited";
    const tryCommand = (command: string, timeoutMs: number): void => {
      qmp.execute(command, undefined, { timeoutMs }).catch((error: unknown) => {
        note(`${command} failed: ${(error as Error).message}`);
      });
    };
    if (qmp.isOpen) {
      note(`system_powerdown; waiting up to ${graceMs} ms for the guest to power off`);
      tryCommand("system_powerdown", Math.max(1, graceMs));
      if ((await within(clock, proc.exited, graceMs)).inTime) return "powerdown";
    }
    if (qmp.isOpen) {
      note(`quit; waiting up to ${quitTimeoutMs} ms`);
      tryCommand("quit", quitTimeoutMs);
      if ((await within(clock, proc.exited, quitTimeoutMs)).inTime) return "quit";
    } else {
      // No monitor to ask: QEMU treats SIGTERM as a quit.
      note("no QMP connection; SIGTERM");
      return terminateGroup(proc, clock, quitTimeoutMs);
    }
    note("QEMU did not exit; SIGKILL");
    signalGroup(proc.pid, "SIGKILL");
    await proc.exited;
    return "SIGKILL";
  }
}

let tscKhz: Promise<number | null> | undefined;

/**
 * `tsc_early_khz=<host TSC rate>` for a TCG guest, or nothing when the rate is unknown. The
 * guest's TSC runs at the host's, but the kernel measures it against the emulated PIT in a short
 * window; on a loaded host that window is lost ("Fast TSC calibration failed"), the kernel finds
 * no clock and never leaves early boot (measured: stuck for minutes at load 20 on 2 cores).
 */
async function tscParameter(): Promise<string[]> {
  tscKhz ??= readFile("/proc/cpuinfo", "utf8").then(
    (text) => {
      const mhz = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(text)?.[1];
      return mhz === undefined ? null : Math.round(Number(mhz) * 1000);
    },
    () => null,
  );
  const khz = await tscKhz;
  return khz === null || !(khz > 0) ? [] : [`tsc_early_khz=${khz}`];
}

/** `probe`, noting in the VM's log when it first passes (so a log shows the check works). */
function notingFirstPass(probe: HealthProbe, note: (line: string) => void): HealthProbe {
  let passed = false;
  return async (signal) => {
    await probe(signal);
    if (!passed) note("health check passed");
    passed = true;
  };
}

/** True if `path` is `dir` or inside it (both resolved). */
function isInside(dir: string, path: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/** QEMU exited while we were connecting to it (internal to this file). */
class QemuExitedError extends Error {}

async function checkReadable(name: string, spec: VmSpec): Promise<void> {
  const files: [string, string][] = [
    ["kernel", spec.kernel],
    ["initrd", spec.initrd],
    ["disk image", spec.image],
  ];
  for (const [what, path] of files) {
    if (path === "") continue;
    try {
      await access(path, constants.R_OK);
    } catch (error) {
      throw new NotFoundError(
        `VM ${name}: the ${what} ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"}); put it on this node or fix the spec`,
        { cause: error },
      );
    }
  }
}

/** How long a paused `-cpu host` microVM must live to count as working. */
const CPU_PROBE_MS = 1500;

/**
 * True if `binary` keeps a paused KVM microVM with `-cpu host` alive for {@link CPU_PROBE_MS}
 * (it is then killed); false if it exits sooner or cannot start.
 */
function probeHostCpuModel(binary: string): Promise<boolean> {
  const args = ["-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "16M", "-S"];
  args.push("-nodefaults", "-no-user-config", "-display", "none");
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(binary, args, { stdio: "ignore" });
    } catch {
      resolve(false);
      return;
    }
    const timer = setTimeout(() => {
      child.removeAllListeners("exit");
      child.kill("SIGKILL");
      resolve(true);
    }, CPU_PROBE_MS);
    child.once("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}
