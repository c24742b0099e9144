/**
 * Where and how one task attempt runs confined: its own working directory (mode 0700, owned by
 * the task user, removed afterwards), the node-set environment, the task user, and its cgroup
 * with the request's CPU and memory as hard limits when the host enforces them.
 *
 * The working directories live under one root per node process, created in the system's temporary
 * directory with mode 0711 (others may pass through it to their own directory but not list it).
 * They are not under the data directory because that is 0700 and owned by the node's user: a
 * task user could not reach a directory inside it.
 */
import { chmod, chown, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CgroupDetection } from "./cgroups.js";
import { TaskCgroup, type TaskLimits } from "./cgroups.js";
import { taskBaseEnv } from "./task-env.js";
import type { TaskUser } from "./task-user.js";

/** One attempt's confinement, ready to spawn into. */
export interface TaskSandbox {
  /** Its working directory (also `HOME` and `TMPDIR`). */
  readonly dir: string;
  /** The node-set environment (the spec's goes on top). */
  readonly env: Readonly<Record<string, string>>;
  /** The user to switch to, when the node runs as root. */
  readonly uid?: number;
  readonly gid?: number;
  /** Its cgroup, when limits are enforced. */
  readonly cgroup?: TaskCgroup;
  /** The memory limit (for the OOM message). */
  readonly memoryMb: number;
  /** Removes the cgroup (killing what is left in it) and the directory. Never rejects. */
  release(): Promise<void>;
}

/** The node's confinement of tasks: user, cgroups and the root of the working directories. */
export class TaskConfinement {
  private constructor(
    readonly user: TaskUser,
    readonly cgroups: CgroupDetection,
    /** The root of the per-task directories. */
    readonly root: string,
  ) {}

  /** Creates the root of the working directories (mode 0711). */
  static async create(user: TaskUser, cgroups: CgroupDetection): Promise<TaskConfinement> {
    const root = await mkdtemp(join(tmpdir(), "blixard-tasks-"));
    await chmod(root, 0o711);
    return new TaskConfinement(user, cgroups, root);
  }

  /** Whether CPU and memory requests are enforced as hard limits. */
  get limitsEnforced(): boolean {
    return this.cgroups.enforced;
  }

  /**
   * Prepares attempt `name` (a file-name-safe key, e.g. `task-build-2`).
   * @throws the file system's error when the directory or the cgroup cannot be made; nothing is
   *   left behind then.
   */
  async prepare(name: string, limits: TaskLimits): Promise<TaskSandbox> {
    const dir = join(this.root, name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o700 });
    let cgroup: TaskCgroup | undefined;
    try {
      if (this.user.switches) await chown(dir, this.user.uid, this.user.gid);
      if (this.cgroups.enforced)
        cgroup = await TaskCgroup.create(this.cgroups.layout, name, limits);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    const switches = this.user.switches;
    return {
      dir,
      env: taskBaseEnv({ dir, userName: this.user.name }),
      ...(switches ? { uid: this.user.uid, gid: this.user.gid } : {}),
      ...(cgroup === undefined ? {} : { cgroup }),
      memoryMb: limits.memoryMb,
      release: async () => {
        await cgroup?.remove().catch(() => undefined);
        await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      },
    };
  }

  /**
   * Creates directory `name` under the root for work that is not one attempt (the process VMs'
   * shared working directory): mode 0700, owned by the task user.
   */
  async sharedDir(name: string): Promise<string> {
    const dir = join(this.root, name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (this.user.switches) await chown(dir, this.user.uid, this.user.gid);
    return dir;
  }

  /** Removes the root (the attempts have released their directories). Never rejects. */
  async close(): Promise<void> {
    await rm(this.root, { recursive: true, force: true }).catch(() => undefined);
  }
}
