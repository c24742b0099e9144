/**
 * Hard CPU and memory limits for tasks through cgroups, v1 or v2, detected at node start.
 *
 * - **v1** (separate `cpu` and `memory` hierarchies, what Debian 12 kernels booted with
 *   `systemd.unified_cgroup_hierarchy=0` and many container hosts have): `cpu.cfs_quota_us` /
 *   `cpu.cfs_period_us` and `memory.limit_in_bytes` (plus `memory.memsw.limit_in_bytes` where
 *   swap accounting exists, so a task cannot swap past its limit).
 * - **v2** (one unified hierarchy with the `cpu` and `memory` controllers): `cpu.max`,
 *   `memory.max` and `memory.swap.max = 0`, in a subtree delegated to the node (the controllers
 *   enabled in `cgroup.subtree_control` down to it).
 *
 * Groups live under the node's own cgroup (read from `/proc/self/cgroup`), so a node confined by
 * its supervisor keeps its tasks inside that confinement: `<node's group>/blixard/<node>/task-<id>`.
 * `<node>` is `node-<id>-<pid>`, unique among the nodes running on one host at a time; the groups
 * of nodes that have exited are removed at the next start (`stale-groups.ts`).
 */
import { access, mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { pruneStaleNodeGroups } from "./stale-groups.js";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** The CFS period every task group gets: 100 ms, the kernel's default. */
export const CPU_PERIOD_US = 100_000;

/** The smallest CFS quota the kernel accepts: 1 ms. */
export const MIN_CPU_QUOTA_US = 1_000;

/** How long removing a group waits for its killed processes to be gone. */
export const CGROUP_REMOVE_TIMEOUT_MS = 2_000;

/** Where the node's task groups go, when limits can be enforced. */
export interface CgroupLayout {
  readonly version: 1 | 2;
  /** v1: the node's group in the cpu hierarchy; v2: the node's group. */
  readonly cpuDir: string;
  /** v1: the node's group in the memory hierarchy; v2: the same as `cpuDir`. */
  readonly memoryDir: string;
}

/** The outcome of {@link detectCgroups}: a layout, or why limits cannot be enforced. */
export type CgroupDetection =
  | {
      readonly enforced: true;
      readonly layout: CgroupLayout;
      /** Groups of node processes that had exited, removed first (see `stale-groups.ts`). */
      readonly prunedStaleGroups: number;
    }
  | { readonly enforced: false; readonly reason: string };

/** Where to look; the defaults are the real host's. */
export interface CgroupDetectOptions {
  /** The cgroup file system root. Default `/sys/fs/cgroup`. */
  readonly root?: string;
  /** The text of `/proc/self/cgroup`. Default: read it. */
  readonly selfCgroup?: string;
  /** This node's group name, e.g. `node-1-4242`. */
  readonly nodeName: string;
}

/** A task's limits. */
export interface TaskLimits {
  readonly cpuMillis: number;
  readonly memoryMb: number;
}

/** The values written for `limits`: a CFS quota for the period, and bytes of memory. Pure. */
export function limitValues(limits: TaskLimits): { quotaUs: number; memoryBytes: number } {
  return {
    // 1000 millicores = one full period per period.
    quotaUs: Math.max(MIN_CPU_QUOTA_US, Math.round((limits.cpuMillis * CPU_PERIOD_US) / 1000)),
    memoryBytes: limits.memoryMb * 2 ** 20,
  };
}

/** The node's own group path per v1 controller, and its v2 path (`0::`). Pure. */
export function parseSelfCgroup(text: string): { v1: Map<string, string>; v2: string | undefined } {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of text.split("\n")) {
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (line.slice(0, first) === "0" && controllers === "") v2 = path;
    else for (const controller of controllers.split(",")) v1.set(controller, path);
  }
  return { v1, v2 };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the cgroup version and creates the node's groups (`blixard/<nodeName>`), which proves
 * they are writable. Never throws: a host where it fails gets `enforced: false` and the reason.
 */
export async function detectCgroups(options: CgroupDetectOptions): Promise<CgroupDetection> {
  const root = options.root ?? "/sys/fs/cgroup";
  let selfText = options.selfCgroup;
  if (selfText === undefined) {
    try {
      selfText = await readFile("/proc/self/cgroup", "utf8");
    } catch (error) {
      return {
        enforced: false,
        reason: `cannot read /proc/self/cgroup: ${(error as Error).message}`,
      };
    }
  }
  const self = parseSelfCgroup(selfText);
  try {
    if (
      (await exists(join(root, "cpu", "cpu.cfs_quota_us"))) &&
      (await exists(join(root, "memory", "memory.limit_in_bytes")))
    ) {
      const cpuDir = join(root, "cpu", self.v1.get("cpu") ?? "/", "blixard", options.nodeName);
      const memoryDir = join(
        root,
        "memory",
        self.v1.get("memory") ?? "/",
        "blixard",
        options.nodeName,
      );
      const pruned =
        (await pruneStaleNodeGroups(dirname(cpuDir), options.nodeName)) +
        (await pruneStaleNodeGroups(dirname(memoryDir), options.nodeName));
      await mkdir(cpuDir, { recursive: true });
      await mkdir(memoryDir, { recursive: true });
      return {
        enforced: true,
        layout: { version: 1, cpuDir, memoryDir },
        prunedStaleGroups: pruned,
      };
    }
    const controllersFile = join(root, "cgroup.controllers");
    if (await exists(controllersFile)) {
      const available = (await readFile(controllersFile, "utf8")).split(/\s+/);
      if (!available.includes("cpu") || !available.includes("memory")) {
        return {
          enforced: false,
          reason: `cgroup v2 at ${root} lacks the cpu or memory controller (has: ${available.join(" ").trim()})`,
        };
      }
      // Enable cpu and memory for the children of every group from the node's down to ours.
      let dir = join(root, self.v2 ?? "/");
      let pruned = 0;
      for (const name of ["blixard", options.nodeName]) {
        await writeFile(join(dir, "cgroup.subtree_control"), "+cpu +memory");
        if (name === options.nodeName) pruned = await pruneStaleNodeGroups(dir, name);
        dir = join(dir, name);
        await mkdir(dir, { recursive: true });
      }
      await writeFile(join(dir, "cgroup.subtree_control"), "+cpu +memory");
      return {
        enforced: true,
        layout: { version: 2, cpuDir: dir, memoryDir: dir },
        prunedStaleGroups: pruned,
      };
    }
    return {
      enforced: false,
      reason: `no cgroup v1 cpu and memory hierarchies nor a cgroup v2 hierarchy under ${root}`,
    };
  } catch (error) {
    return {
      enforced: false,
      reason: `cannot create the node's cgroups under ${root}: ${(error as Error).message}`,
    };
  }
}

/** One task's group (one directory per hierarchy on v1, one on v2). */
export class TaskCgroup {
  private constructor(
    private readonly layout: CgroupLayout,
    /** The group's directories: cpu then memory on v1, one on v2. */
    readonly dirs: readonly string[],
  ) {}

  /**
   * Creates group `name` under the node's groups with `limits` as hard limits.
   * @throws the file system's error when a group cannot be created or a limit written; what was
   *   created is removed again.
   */
  static async create(layout: CgroupLayout, name: string, limits: TaskLimits): Promise<TaskCgroup> {
    const group = TaskCgroup.at(layout, name);
    const dirs = group.dirs;
    try {
      for (const dir of dirs) await mkdir(dir);
      await group.writeLimits(limits);
    } catch (error) {
      await group.remove().catch(() => undefined);
      throw error;
    }
    return group;
  }

  /** Group `name` under the node's groups, whether or not it exists (to remove a leftover). */
  static at(layout: CgroupLayout, name: string): TaskCgroup {
    const dirs =
      layout.version === 1
        ? [join(layout.cpuDir, name), join(layout.memoryDir, name)]
        : [join(layout.cpuDir, name)];
    return new TaskCgroup(layout, dirs);
  }

  private async writeLimits(limits: TaskLimits): Promise<void> {
    const { quotaUs, memoryBytes } = limitValues(limits);
    const [cpuDir, memoryDir] = [this.dirs[0] as string, this.dirs.at(-1) as string];
    if (this.layout.version === 1) {
      await writeFile(join(cpuDir, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
      await writeFile(join(cpuDir, "cpu.cfs_quota_us"), String(quotaUs));
      await writeFile(join(memoryDir, "memory.limit_in_bytes"), String(memoryBytes));
      const swap = join(memoryDir, "memory.memsw.limit_in_bytes");
      if (await exists(swap)) await writeFile(swap, String(memoryBytes));
    } else {
      await writeFile(join(cpuDir, "cpu.max"), `${quotaUs} ${CPU_PERIOD_US}`);
      await writeFile(join(memoryDir, "memory.max"), String(memoryBytes));
      const swap = join(memoryDir, "memory.swap.max");
      if (await exists(swap)) await writeFile(swap, "0");
    }
  }

  /** Moves process `pid` into the group (every hierarchy). */
  async join(pid: number): Promise<void> {
    for (const dir of this.dirs) await writeFile(join(dir, "cgroup.procs"), String(pid));
  }

  /** Whether the kernel's OOM killer killed a process of the group (its memory limit was hit). */
  async oomKilled(): Promise<boolean> {
    const memoryDir = this.dirs.at(-1) as string;
    const file = join(
      memoryDir,
      this.layout.version === 1 ? "memory.oom_control" : "memory.events",
    );
    try {
      const match = /^oom_kill (\d+)$/m.exec(await readFile(file, "utf8"));
      return match !== null && Number(match[1]) > 0;
    } catch {
      return false;
    }
  }

  /** The pids in the group now (every hierarchy, unique). */
  async pids(): Promise<number[]> {
    const pids = new Set<number>();
    for (const dir of this.dirs) {
      try {
        for (const line of (await readFile(join(dir, "cgroup.procs"), "utf8")).split("\n")) {
          if (/^\d+$/.test(line)) pids.add(Number(line));
        }
      } catch {
        // A group already removed holds nothing.
      }
    }
    return [...pids];
  }

  /**
   * Kills whatever still runs in the group (a process that left the task's process group with
   * `setsid` is still here) and removes it, waiting up to {@link CGROUP_REMOVE_TIMEOUT_MS} for
   * the killed processes to be gone.
   * @throws the last file system error when the group could not be removed in time.
   */
  async remove(): Promise<void> {
    const deadline = Date.now() + CGROUP_REMOVE_TIMEOUT_MS;
    for (;;) {
      for (const pid of await this.pids()) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Gone meanwhile.
        }
      }
      let failure: unknown;
      for (const dir of this.dirs) {
        try {
          await rmdir(dir);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") failure = error;
        }
      }
      if (failure === undefined) return;
      if (Date.now() >= deadline) throw failure;
      await sleep(20);
    }
  }
}
