/**
 * The chaos suite's machine: network namespaces on a private bridge, nftables rules inside
 * them, and a small ext4 file system per node on a loop device. Everything it creates is named
 * `bxc<owner pid>…`, so {@link removeLeftovers} can remove what a crashed run left behind
 * (owner no longer alive) without touching a run that is still going. Needs root, `ip`,
 * `nsenter`, `nft`, `mkfs.ext4`, `mount`, `fallocate` and `xfs_io` (see README, "Fault testing").
 */
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  statfsSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Prefix of every name the suite creates (namespaces, links, directories). */
export const PREFIX = "bxc";
/** The bridge's subnet: it exists only inside this run's namespaces, so runs cannot collide. */
const SUBNET = "10.213.0";
/** The client namespace's host number on the subnet. */
const CLIENT_HOST = 250;

/** Runs a command; throws with its stderr on failure. */
export function sh(command: string, args: readonly string[], input?: string): string {
  const result = spawnSync(command, args, { input, encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${result.status ?? result.signal}): ${result.stderr}`,
    );
  }
  return result.stdout;
}

/** Runs a command and ignores its failure (cleanup). */
function trySh(command: string, args: readonly string[]): void {
  spawnSync(command, args, { encoding: "utf8" });
}

/** The names of one run's objects. */
export class RunNames {
  constructor(readonly owner: number) {}
  get root(): string {
    return join(tmpdir(), `${PREFIX}${this.owner}`);
  }
  get bridge(): string {
    return `${PREFIX}${this.owner}b`;
  }
  get clientNs(): string {
    return `${PREFIX}${this.owner}c`;
  }
  nodeNs(slot: number): string {
    return `${PREFIX}${this.owner}n${slot}`;
  }
  hostVeth(tag: string): string {
    return `${PREFIX}${this.owner}h${tag}`;
  }
  peerVeth(tag: string): string {
    return `${PREFIX}${this.owner}p${tag}`;
  }
  /** A node slot's address on the bridge. */
  address(slot: number): string {
    return `${SUBNET}.${10 + slot}`;
  }
  get clientAddress(): string {
    return `${SUBNET}.${CLIENT_HOST}`;
  }
  /** The copy of the build the run's nodes load (see {@link copyBuild}). */
  get build(): string {
    return join(this.root, "build");
  }
  mountPoint(slot: number): string {
    return join(this.root, `disk-${slot}`);
  }
  image(slot: number): string {
    return join(this.root, `disk-${slot}.img`);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function namespaces(): string[] {
  return existsSync("/run/netns") ? readdirSync("/run/netns") : [];
}

/** Removes everything of run `owner`: processes in its namespaces, mounts, loops, links, namespaces, files. */
export function removeRun(owner: number): void {
  const names = new RunNames(owner);
  const own = new RegExp(`^${PREFIX}${owner}(c|n\\d+)$`);
  const mine = namespaces().filter((ns) => own.test(ns));
  for (const ns of mine) {
    const pids = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout.split(/\s+/);
    for (const pid of pids.filter((p) => p !== "")) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone already
      }
    }
  }
  if (existsSync(names.root)) {
    for (const entry of readdirSync(names.root)) {
      if (!entry.startsWith("disk-") || entry.endsWith(".img")) continue;
      const mount = join(names.root, entry);
      // A shut-down file system unmounts too; lazily if a dying process still holds it.
      if (spawnSync("umount", [mount]).status !== 0) trySh("umount", ["-l", mount]);
    }
    for (const line of sh("losetup", ["-a"]).split("\n")) {
      if (line.includes(`${names.root}/`)) trySh("losetup", ["-d", line.split(":")[0] ?? ""]);
    }
  }
  for (const ns of mine) trySh("ip", ["netns", "del", ns]);
  trySh("ip", ["link", "del", names.bridge]);
  rmSync(names.root, { recursive: true, force: true });
}

/** Removes what earlier runs whose owner process is gone left behind. Returns their owners. */
export function removeLeftovers(): number[] {
  const owners = new Set<number>();
  const pattern = new RegExp(`^${PREFIX}(\\d+)`);
  for (const ns of namespaces()) {
    const match = pattern.exec(ns);
    if (match !== null) owners.add(Number(match[1]));
  }
  for (const entry of readdirSync(tmpdir())) {
    const match = pattern.exec(entry);
    if (match !== null) owners.add(Number(match[1]));
  }
  const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout;
  for (const match of links.matchAll(new RegExp(`: ${PREFIX}(\\d+)b[:@]`, "g"))) {
    owners.add(Number(match[1]));
  }
  const dead = [...owners].filter((owner) => owner !== process.pid && !isAlive(owner));
  for (const owner of dead) removeRun(owner);
  return dead;
}

/** Creates the bridge, the client namespace and one namespace per node slot, all linked. */
export function createNetwork(names: RunNames, slots: number): void {
  sh("ip", ["link", "add", names.bridge, "type", "bridge"]);
  sh("ip", ["link", "set", names.bridge, "up"]);
  const attach = (ns: string, tag: string, address: string): void => {
    sh("ip", ["netns", "add", ns]);
    sh("ip", [
      "link",
      "add",
      names.hostVeth(tag),
      "type",
      "veth",
      "peer",
      "name",
      names.peerVeth(tag),
    ]);
    sh("ip", ["link", "set", names.hostVeth(tag), "master", names.bridge]);
    sh("ip", ["link", "set", names.hostVeth(tag), "up"]);
    sh("ip", ["link", "set", names.peerVeth(tag), "netns", ns]);
    const inside = (...args: string[]): string => sh("ip", ["-n", ns, ...args]);
    inside("link", "set", names.peerVeth(tag), "name", "eth0");
    inside("addr", "add", `${address}/24`, "dev", "eth0");
    inside("link", "set", "eth0", "up");
    inside("link", "set", "lo", "up");
  };
  attach(names.clientNs, "c", names.clientAddress);
  for (let slot = 1; slot <= slots; slot++)
    attach(names.nodeNs(slot), String(slot), names.address(slot));
}

/** What one node's namespace lets in from the other nodes. */
export interface NodeFilter {
  /** Addresses whose packets are dropped on arrival (a cut link, one direction). */
  readonly blockedFrom: readonly string[];
  /** Percent of packets from other nodes dropped at random (0 = none). */
  readonly lossPercent: number;
}

/**
 * Replaces the nftables rules of `ns` with `filter`. Only traffic from other nodes is touched:
 * the clients (and the suite's probes) always reach every node.
 */
export function applyFilter(names: RunNames, ns: string, filter: NodeFilter): void {
  const lines = [
    "flush ruleset",
    "table inet chaos {",
    "  chain input {",
    "    type filter hook input priority 0; policy accept;",
  ];
  if (filter.blockedFrom.length > 0)
    lines.push(`    ip saddr { ${filter.blockedFrom.join(", ")} } drop`);
  if (filter.lossPercent > 0) {
    lines.push(
      `    ip saddr ${SUBNET}.0/24 ip saddr != ${names.clientAddress} numgen random mod 100 < ${filter.lossPercent} drop`,
    );
  }
  lines.push("  }", "}");
  sh("nsenter", [`--net=/run/netns/${ns}`, "nft", "-f", "-"], `${lines.join("\n")}\n`);
}

/**
 * Copies the build a node process loads (`dist/`, `bin/`, `package.json`; `node_modules`, `ui`
 * and `guest` linked) from the repository at `repo` into the run's directory, so that every node
 * start of the run, restarts included, loads the same code: a build of the repository during a
 * long run (`npm test` builds `dist/`) would otherwise hand a restarting node a half-written
 * `dist/`, and it would die with exit code 1 (ERR_MODULE_NOT_FOUND) before it logs anything.
 */
export function copyBuild(names: RunNames, repo: string): void {
  mkdirSync(names.build, { recursive: true });
  cpSync(join(repo, "dist"), join(names.build, "dist"), { recursive: true });
  cpSync(join(repo, "bin"), join(names.build, "bin"), { recursive: true });
  copyFileSync(join(repo, "package.json"), join(names.build, "package.json"));
  for (const linked of ["node_modules", "ui", "guest"]) {
    if (existsSync(join(repo, linked))) symlinkSync(join(repo, linked), join(names.build, linked));
  }
}

/** Creates and mounts slot `slot`'s small ext4 file system (`sizeMiB`), without reserved blocks. */
export function createDisk(names: RunNames, slot: number, sizeMiB: number): void {
  mkdirSync(names.mountPoint(slot), { recursive: true });
  sh("truncate", ["-s", `${sizeMiB}M`, names.image(slot)]);
  sh("mkfs.ext4", ["-q", "-F", "-m", "0", names.image(slot)]);
  mountDisk(names, slot);
}

/**
 * Mounts slot `slot`'s image through a fresh loop device. After a shutdown a fresh device
 * matters: a mount namespace created meanwhile by any process on the machine holds a copy of
 * the old mount, which keeps the shut-down superblock alive after our unmount, and mounting the
 * same device again would hand that superblock back (still failing with EIO).
 */
export function mountDisk(names: RunNames, slot: number): void {
  const device = sh("losetup", ["-f", "--show", names.image(slot)]).trim();
  sh("mount", [device, names.mountPoint(slot)]);
}

/** Unmounts slot `slot`'s file system (its node must have exited) and detaches its device. */
export function unmountDisk(names: RunNames, slot: number): void {
  const device = sh("findmnt", ["-n", "-o", "SOURCE", names.mountPoint(slot)]).trim();
  sh("umount", [names.mountPoint(slot)]);
  // Detached at once, or (held elsewhere) as soon as the last holder lets go.
  trySh("losetup", ["-d", device]);
}

const FILL_FILE = "chaos-fill";

/** Fills slot `slot`'s file system to the last block with a file the node does not know. */
export function fillDisk(names: RunNames, slot: number): void {
  const path = join(names.mountPoint(slot), FILL_FILE);
  const stats = statfsSync(names.mountPoint(slot));
  const freeBytes = stats.bfree * stats.bsize;
  // fallocate reserves the blocks at once; what metadata keeps free is then written as zeros.
  if (spawnSync("fallocate", ["-l", String(freeBytes), path]).status !== 0) {
    trySh("fallocate", ["-l", String(Math.floor(freeBytes * 0.95)), path]);
  }
  const chunk = Buffer.alloc(64 * 1024);
  const rest = join(names.mountPoint(slot), `${FILL_FILE}-rest`);
  try {
    for (let i = 0; i < 4096; i++) writeFileSync(rest, chunk, { flag: "a" });
  } catch {
    // ENOSPC: full
  }
  try {
    writeFileSync(rest, Buffer.alloc(512), { flag: "a" });
  } catch {
    // ENOSPC
  }
}

/** Frees what {@link fillDisk} took. */
export function freeDisk(names: RunNames, slot: number): void {
  rmSync(join(names.mountPoint(slot), FILL_FILE), { force: true });
  rmSync(join(names.mountPoint(slot), `${FILL_FILE}-rest`), { force: true });
}

/**
 * Makes slot `slot`'s disk fail: an ext4 shutdown (the `EXT4_IOC_SHUTDOWN` ioctl through
 * `xfs_io -x -c shutdown`) turns every later write and fsync into EIO, as a dead device does,
 * without flushing the journal. Healed only by unmounting and mounting again.
 */
export function breakDisk(names: RunNames, slot: number): void {
  sh("xfs_io", ["-x", "-c", "shutdown", names.mountPoint(slot)]);
}

/** The tools the suite needs that are missing on this machine. */
export function missingTools(): string[] {
  const tools = [
    "ip",
    "nsenter",
    "nft",
    "mkfs.ext4",
    "mount",
    "losetup",
    "fallocate",
    "xfs_io",
    "faketime",
  ];
  return tools.filter((tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0);
}

/** True if this process may create namespaces and mounts. */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}
