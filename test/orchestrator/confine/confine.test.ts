/**
 * The confinement's pure parts and its file work against fake trees: the task user from a passwd
 * text, the task environment's allow-list, cgroup detection (v1 and v2 layouts in a temporary
 * directory standing for /sys/fs/cgroup) and the limits written for a task.
 */
import { removeGroupTree } from "../../../src/orchestrator/confine/stale-groups.js";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  TaskCgroup,
  detectCgroups,
  limitValues,
  parseSelfCgroup,
} from "../../../src/orchestrator/confine/cgroups.js";
import { taskBaseEnv } from "../../../src/orchestrator/confine/task-env.js";
import { findPasswdUser, resolveTaskUser } from "../../../src/orchestrator/confine/task-user.js";

const PASSWD = [
  "root:x:0:0:root:/root:/bin/bash",
  "# a comment",
  "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
  "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
  "broken:x::",
  "",
].join("\n");

let dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs = [];
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "blixard-confine-"));
  dirs.push(dir);
  return dir;
}

describe("task user", () => {
  it("finds a user by name or uid in a passwd text", () => {
    expect(findPasswdUser("nobody", PASSWD)).toEqual({ name: "nobody", uid: 65534, gid: 65534 });
    expect(findPasswdUser("1", PASSWD)).toEqual({ name: "daemon", uid: 1, gid: 1 });
  });

  it("takes UID:GID not in the file as is", () => {
    expect(findPasswdUser("1234:5678", PASSWD)).toEqual({
      name: "1234:5678",
      uid: 1234,
      gid: 5678,
    });
    expect(findPasswdUser("4321", PASSWD)).toEqual({ name: "4321", uid: 4321, gid: 4321 });
  });

  it("refuses an unknown name, saying what to do", () => {
    expect(() => findPasswdUser("ghost", PASSWD)).toThrow(/not in \/etc\/passwd: create it/);
    expect(() => findPasswdUser("broken", PASSWD)).toThrow(/not in \/etc\/passwd/);
  });

  it("as root, resolves the requested user (default nobody) and switches to it", async () => {
    const passwd = join(tempDir(), "passwd");
    writeFileSync(passwd, PASSWD);
    expect(await resolveTaskUser({ passwdPath: passwd, nodeUid: 0 })).toEqual({
      name: "nobody",
      uid: 65534,
      gid: 65534,
      switches: true,
    });
    expect(await resolveTaskUser({ requested: "root", passwdPath: passwd, nodeUid: 0 })).toEqual({
      name: "root",
      uid: 0,
      gid: 0,
      switches: false,
    });
  });

  it("not as root, runs tasks as the node's own user whatever was requested", async () => {
    const user = await resolveTaskUser({ requested: "nobody", nodeUid: 1000 });
    expect(user.switches).toBe(false);
    expect(user.uid).toBe(process.getuid?.());
  });
});

describe("task environment", () => {
  it("holds only the allow-list: PATH from the node, HOME and TMPDIR the task dir, the user, LANG/LC_ALL/TZ", () => {
    const env = taskBaseEnv({
      dir: "/t/task-1",
      userName: "nobody",
      nodeEnv: {
        PATH: "/usr/bin:/bin",
        HOME: "/root",
        LANG: "C.UTF-8",
        TZ: "UTC",
        BLIXARD_TOKEN: "secret",
        AWS_SECRET_ACCESS_KEY: "x",
        LD_PRELOAD: "/evil.so",
      },
    });
    expect(env).toEqual({
      PATH: "/usr/bin:/bin",
      HOME: "/t/task-1",
      TMPDIR: "/t/task-1",
      USER: "nobody",
      LOGNAME: "nobody",
      LANG: "C.UTF-8",
      TZ: "UTC",
    });
  });

  it("falls back to a standard PATH when the node has none", () => {
    expect(taskBaseEnv({ dir: "/t", userName: "u", nodeEnv: {} })["PATH"]).toBe(
      "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
  });
});

describe("cgroups", () => {
  it("reads the node's own groups from /proc/self/cgroup", () => {
    const self = parseSelfCgroup("4:memory:/svc/a\n2:cpu,cpuacct:/\n0::/user.slice/x\n");
    expect(self.v1.get("memory")).toBe("/svc/a");
    expect(self.v1.get("cpu")).toBe("/");
    expect(self.v1.get("cpuacct")).toBe("/");
    expect(self.v2).toBe("/user.slice/x");
  });

  it("turns a request into a CFS quota per 100 ms period and bytes, with the kernel's 1 ms floor", () => {
    expect(limitValues({ cpuMillis: 1000, memoryMb: 256 })).toEqual({
      quotaUs: 100_000,
      memoryBytes: 256 * 2 ** 20,
    });
    expect(limitValues({ cpuMillis: 250, memoryMb: 1 }).quotaUs).toBe(25_000);
    expect(limitValues({ cpuMillis: 1, memoryMb: 1 }).quotaUs).toBe(1_000);
  });

  it("detects v1, nests under the node's own groups, and writes a task's limits there", async () => {
    const root = tempDir();
    mkdirSync(join(root, "cpu"));
    mkdirSync(join(root, "memory", "svc"), { recursive: true });
    writeFileSync(join(root, "cpu", "cpu.cfs_quota_us"), "-1");
    writeFileSync(join(root, "memory", "memory.limit_in_bytes"), "max");
    const detected = await detectCgroups({
      root,
      selfCgroup: "4:memory:/svc\n1:cpu:/\n",
      nodeName: "node-1-42",
    });
    expect(detected).toEqual({
      enforced: true,
      layout: {
        version: 1,
        cpuDir: join(root, "cpu", "blixard", "node-1-42"),
        memoryDir: join(root, "memory", "svc", "blixard", "node-1-42"),
      },
      prunedStaleGroups: 0,
    });
    if (!detected.enforced) return;
    const group = await TaskCgroup.create(detected.layout, "task-t-1", {
      cpuMillis: 500,
      memoryMb: 64,
    });
    const cpu = join(detected.layout.cpuDir, "task-t-1");
    const memory = join(detected.layout.memoryDir, "task-t-1");
    expect(group.dirs).toEqual([cpu, memory]);
    expect(readFileSync(join(cpu, "cpu.cfs_period_us"), "utf8")).toBe("100000");
    expect(readFileSync(join(cpu, "cpu.cfs_quota_us"), "utf8")).toBe("50000");
    expect(readFileSync(join(memory, "memory.limit_in_bytes"), "utf8")).toBe(String(64 * 2 ** 20));
    await group.join(4242);
    expect(readFileSync(join(cpu, "cgroup.procs"), "utf8")).toBe("4242");
    expect(readFileSync(join(memory, "cgroup.procs"), "utf8")).toBe("4242");
    expect(await group.oomKilled()).toBe(false);
    writeFileSync(
      join(memory, "memory.oom_control"),
      "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
    );
    expect(await group.oomKilled()).toBe(true);
  });

  it("removes the groups of node processes that exited, never a running node's nor a group still in use", async () => {
    const root = tempDir();
    writeFileSync(join(root, "cgroup.controllers"), "cpu memory\n");
    const blixard = join(root, "blixard");
    // A node killed with its task group left behind (empty: its processes are gone).
    const dead = join(blixard, "node-1-999999999");
    mkdirSync(join(dead, "task-t-1"), { recursive: true });
    // A live node (this very process) and an unrelated group.
    const live = join(blixard, `node-2-${process.pid}`);
    mkdirSync(join(live, "task-u-1"), { recursive: true });
    mkdirSync(join(blixard, "something-else"));
    // A dead node's group that still holds something (a real cgroup with a process refuses
    // rmdir; here a file stands for it).
    const busy = join(blixard, "node-3-999999998");
    mkdirSync(busy);
    writeFileSync(join(busy, "cgroup.procs"), "4242");
    const detected = await detectCgroups({ root, selfCgroup: "0::/\n", nodeName: "node-1-7" });
    expect(detected).toMatchObject({ enforced: true, prunedStaleGroups: 1 });
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(join(live, "task-u-1"))).toBe(true);
    expect(existsSync(join(blixard, "something-else"))).toBe(true);
    expect(existsSync(busy)).toBe(true);
    expect(existsSync(join(blixard, "node-1-7"))).toBe(true);
    // A stopping node removes its own groups.
    if (!detected.enforced) return;
    mkdirSync(join(detected.layout.cpuDir, "task-v-1"));
    // A real group's control files go with its rmdir; the fake's are plain files.
    rmSync(join(detected.layout.cpuDir, "cgroup.subtree_control"));
    expect(await removeGroupTree(detected.layout.cpuDir)).toBe(true);
    expect(existsSync(join(blixard, "node-1-7"))).toBe(false);
  });

  it("detects v2 with cpu and memory, enabling them down the subtree, and writes cpu.max and memory.max", async () => {
    const root = tempDir();
    mkdirSync(join(root, "system.slice"));
    writeFileSync(join(root, "cgroup.controllers"), "cpuset cpu io memory pids\n");
    const detected = await detectCgroups({
      root,
      selfCgroup: "0::/system.slice\n",
      nodeName: "node-2-7",
    });
    const dir = join(root, "system.slice", "blixard", "node-2-7");
    expect(detected).toEqual({
      enforced: true,
      layout: { version: 2, cpuDir: dir, memoryDir: dir },
      prunedStaleGroups: 0,
    });
    for (const d of [join(root, "system.slice"), join(root, "system.slice", "blixard"), dir]) {
      expect(readFileSync(join(d, "cgroup.subtree_control"), "utf8")).toBe("+cpu +memory");
    }
    if (!detected.enforced) return;
    writeFileSync(join(dir, "memory.swap.max"), "max");
    const group = await TaskCgroup.create(detected.layout, "task-u-2", {
      cpuMillis: 1500,
      memoryMb: 128,
    });
    const task = join(dir, "task-u-2");
    expect(group.dirs).toEqual([task]);
    expect(readFileSync(join(task, "cpu.max"), "utf8")).toBe("150000 100000");
    expect(readFileSync(join(task, "memory.max"), "utf8")).toBe(String(128 * 2 ** 20));
    writeFileSync(join(task, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
    expect(await group.oomKilled()).toBe(true);
  });

  it("says why limits are not enforced: v2 without the memory controller, or no hierarchy", async () => {
    const v2 = tempDir();
    writeFileSync(join(v2, "cgroup.controllers"), "cpu pids\n");
    expect(await detectCgroups({ root: v2, selfCgroup: "0::/\n", nodeName: "n" })).toEqual({
      enforced: false,
      reason: `cgroup v2 at ${v2} lacks the cpu or memory controller (has: cpu pids)`,
    });
    const none = tempDir();
    const detected = await detectCgroups({ root: none, selfCgroup: "", nodeName: "n" });
    expect(detected.enforced).toBe(false);
    expect(detected.enforced ? "" : detected.reason).toContain("no cgroup v1 cpu and memory");
  });
});
