/**
 * The flags a worker is started with, shared by `node start` (a server that is also a worker)
 * and `agent start` (an agent-only worker), so both read them the same way: what the host
 * offers (`--cpu --memory --disk --features`), what it runs (`--enable-raw-exec`, `--task-user`,
 * `--vm-image-dir`, `--vm-ready-timeout-ms`), the dead-after time, and the node's TLS files.
 * Each can also come from `BLIXARD_<NAME>` and the config file.
 */
import { resolve } from "node:path";
import { Option, type Command } from "commander";
import { DEFAULT_TASK_USER, resolveTaskUser } from "../../orchestrator/confine/task-user.js";
import type { DetectedHost } from "../../orchestrator/host/index.js";
import { DEFAULT_WORKER_DEAD_AFTER_MS } from "../../orchestrator/liveness.js";
import type { JsonLogger } from "../log.js";
import { defaultShown } from "../option-defaults.js";
import { parseNonNegativeInt, parsePositiveInt, parseSwitch } from "../options.js";
import type { WorkloadSettings } from "./local-drivers.js";
import { DEFAULT_VM_READY_TIMEOUT_MS, guestIn, type VmSettings } from "./vm-settings.js";

/** An option that can also come from `BLIXARD_<env>` and the config file. */
export function setting(
  flags: string,
  description: string,
  env: string,
  parse?: (value: string) => unknown,
): Option {
  const option = new Option(flags, description).env(`BLIXARD_${env}`);
  return parse === undefined ? option : option.argParser(parse);
}

/**
 * A {@link setting} whose default is applied after the config file and environment (so not by
 * commander): help shows `shown`, taken from the constant the node uses.
 */
export function settingWithDefault(
  flags: string,
  description: string,
  env: string,
  shown: string | number,
  parse?: (value: string) => unknown,
): Option {
  return defaultShown(setting(flags, description, env, parse), shown);
}

/** The worker flags as commander parsed them. */
export interface WorkerFlags {
  readonly cpu?: string;
  readonly memory?: string;
  readonly disk?: string;
  readonly features?: string;
  readonly workerDeadAfterMs?: number;
  readonly vmImageDir?: string;
  readonly vmReadyTimeoutMs?: number;
  readonly enableRawExec?: boolean;
  readonly taskUser?: string;
}

/** Adds the worker flags to `command`. Returns `command`. */
export function addWorkerOptions(command: Command): Command {
  return command
    .addOption(
      settingWithDefault(
        "--cpu <cores>",
        "CPU this node offers as a worker: 2.5 or 2500m",
        "CPU",
        "detected",
      ),
    )
    .addOption(
      settingWithDefault("--memory <size>", "memory it offers: 8G, 512M", "MEMORY", "detected"),
    )
    .addOption(
      settingWithDefault(
        "--disk <size>",
        "disk it offers: 100G",
        "DISK",
        "free space under --data-dir",
      ),
    )
    .addOption(
      setting(
        "--features <list>",
        "worker features to add (ssd,gpu) or remove (-kvm); kvm and qemu are detected",
        "FEATURES",
      ),
    )
    .addOption(
      settingWithDefault(
        "--worker-dead-after-ms <ms>",
        "the leader marks a worker offline after this long without a word; give servers and " +
          "agents the same value",
        "WORKER_DEAD_AFTER_MS",
        DEFAULT_WORKER_DEAD_AFTER_MS,
        parsePositiveInt,
      ),
    )
    .addOption(
      setting(
        "--vm-image-dir <dir>",
        "the only directory qemu VMs may take kernels, initrds and disk images from; holding the " +
          "Blixard guest (blixard image build), it also proves KVM by booting it",
        "VM_IMAGE_DIR",
      ),
    )
    .addOption(
      settingWithDefault(
        "--enable-raw-exec [yes]",
        "run tasks and process VMs as host processes on this node (see README Security)",
        "ENABLE_RAW_EXEC",
        "off",
        parseSwitch,
      ),
    )
    .addOption(
      settingWithDefault(
        "--task-user <user>",
        "user tasks run as when the node runs as root: a name or UID:GID",
        "TASK_USER",
        DEFAULT_TASK_USER,
      ),
    )
    .addOption(
      settingWithDefault(
        "--vm-ready-timeout-ms <ms>",
        "a qemu VM booting a kernel fails unless its guest announces readiness within this " +
          "(0: running once QEMU answers)",
        "VM_READY_TIMEOUT_MS",
        DEFAULT_VM_READY_TIMEOUT_MS,
        parseNonNegativeInt,
      ),
    );
}

/** The node's TLS files and `--insecure`, as commander parsed them. */
export interface NodeTlsFileFlags {
  readonly tlsCa?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly insecure?: boolean;
}

/** Adds `--tls-ca`, `--tls-cert`, `--tls-key` and `--insecure` to `command`. Returns `command`. */
export function addNodeTlsOptions(command: Command): Command {
  return command
    .addOption(
      settingWithDefault(
        "--tls-ca <file>",
        "the cluster's CA certificate",
        "TLS_CA",
        "<data-dir>/tls/ca.pem",
      ),
    )
    .addOption(
      settingWithDefault(
        "--tls-cert <file>",
        "this node's certificate, for peers and the API",
        "TLS_CERT",
        "<data-dir>/tls/node-<id>.pem",
      ),
    )
    .addOption(
      settingWithDefault(
        "--tls-key <file>",
        "its private key",
        "TLS_KEY",
        "<data-dir>/tls/node-<id>-key.pem",
      ),
    )
    .addOption(
      setting(
        "--insecure",
        "no TLS: plaintext peers, plain HTTP and unencrypted VM migrations (anyone who reaches a port controls the cluster)",
        "INSECURE",
      ),
    );
}

/** What a worker offers and runs, resolved from its flags. */
export interface ResolvedWorker {
  readonly host: DetectedHost;
  readonly workloads: WorkloadSettings;
  readonly vm: VmSettings;
}

/**
 * Detects the host (capacity, features, KVM), applies the overrides, resolves raw exec and the
 * task user, and the qemu settings.
 * @throws InvalidArgumentError for a bad size, feature list or task user (a usage error).
 */
export async function resolveWorker(
  flags: WorkerFlags,
  dataDir: string,
  logger: JsonLogger,
): Promise<ResolvedWorker> {
  // Loaded here, not at the top: the probe is heavy, and the client commands should start fast.
  const { detectHost } = await import("../../orchestrator/host/index.js");
  const vmImageDir = flags.vmImageDir === undefined ? undefined : resolve(flags.vmImageDir);
  const guest = vmImageDir === undefined ? undefined : guestIn(vmImageDir);
  const host = await detectHost({
    dataDir,
    ...(guest === undefined ? {} : { guest }),
    overrides: {
      ...(flags.cpu === undefined ? {} : { cpu: flags.cpu }),
      ...(flags.memory === undefined ? {} : { memory: flags.memory }),
      ...(flags.disk === undefined ? {} : { disk: flags.disk }),
      ...(flags.features === undefined ? {} : { features: flags.features }),
    },
  });
  const workloads = await workloadSettings(flags, logger);
  return {
    host,
    workloads,
    vm: {
      readyTimeoutMs: flags.vmReadyTimeoutMs ?? DEFAULT_VM_READY_TIMEOUT_MS,
      ...(vmImageDir === undefined ? {} : { imageDir: vmImageDir }),
    },
  };
}

/**
 * Raw exec and the task user from the flags. `--enable-raw-exec` without a value means yes.
 * @throws InvalidArgumentError when the task user cannot be resolved (node running as root).
 */
async function workloadSettings(flags: WorkerFlags, logger: JsonLogger): Promise<WorkloadSettings> {
  if (flags.enableRawExec !== true) return { rawExec: false };
  const taskUser = await resolveTaskUser({
    ...(flags.taskUser === undefined ? {} : { requested: flags.taskUser }),
  });
  if (flags.taskUser !== undefined && !taskUser.switches && process.getuid?.() !== 0) {
    logger.warn("--task-user is ignored: the node does not run as root", {
      tasksRunAs: taskUser.name,
    });
  }
  return { rawExec: true, taskUser };
}
