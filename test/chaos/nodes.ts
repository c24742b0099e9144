/**
 * The nodes of a chaos run: real `bin/blixard.js node start` processes, each inside its slot's
 * network namespace (`nsenter --net`), its data directory on its slot's own file system, and,
 * for clock faults, under libfaketime reading its offset from a file the nemesis rewrites.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { API_SCHEME, clientHeaders, nodeSecurityFlags, nodeTuningFlags } from "./profile.js";
import type { RunNames } from "./host.js";

const FAKETIME_LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const PEER_PORT = 7001;
const API_PORT = 8001;
const LOG_TAIL_BYTES = 256 * 1024;
/** A status request's bound: generous, a loaded 2-core machine answers slowly. */
const STATUS_TIMEOUT_MS = 1500;

/** The cluster status a node reports (the fields the suite reads). */
export interface NodeStatus {
  readonly id: number;
  readonly term: number;
  readonly role: string;
  readonly leader: number | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly config: { readonly voters: number[]; readonly learners: number[] };
  readonly progress: { readonly id: number; readonly match: number }[];
}

/** One node incarnation: an id on a slot (namespace, address, disk). */
export class ChaosNode {
  process: ChildProcess | undefined;
  exit: { code: number | null; signal: string | null } | undefined;
  paused = false;
  private log = "";
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly names: RunNames,
    readonly id: number,
    readonly slot: number,
    readonly clockFile: string | undefined,
  ) {}

  get address(): string {
    return this.names.address(this.slot);
  }
  get peerAddress(): string {
    return `${this.address}:${PEER_PORT}`;
  }
  get apiAddress(): string {
    return `${this.address}:${API_PORT}`;
  }
  get apiUrl(): string {
    return `${API_SCHEME}://${this.apiAddress}`;
  }
  get dataDir(): string {
    return join(this.names.mountPoint(this.slot), `node-${this.id}`);
  }
  get running(): boolean {
    return this.process !== undefined && this.exit === undefined;
  }

  /** Starts the process: first start with `firstStart` flags, a restart with none. */
  start(firstStart: readonly string[] | undefined): void {
    const args = [
      `--net=/run/netns/${this.names.nodeNs(this.slot)}`,
      "--",
      process.execPath,
      // The run's copy of the build (host.ts, copyBuild), not the repository's.
      join(this.names.build, "bin", "blixard.js"),
      "node",
      "start",
      "--data-dir",
      this.dataDir,
      ...(firstStart ?? []),
      ...nodeTuningFlags(),
      ...nodeSecurityFlags(),
    ];
    const env: NodeJS.ProcessEnv = { ...process.env, BLIXARD_ENDPOINTS: "" };
    if (this.clockFile !== undefined) {
      Object.assign(env, {
        LD_PRELOAD: FAKETIME_LIBRARY,
        FAKETIME_TIMESTAMP_FILE: this.clockFile,
        FAKETIME_NO_CACHE: "1",
        // A clock jump is a step of the wall clock (NTP, an operator's `date -s`); the
        // monotonic clock never jumps on Linux. Faked too, it rewinds libuv's loop time, and
        // every timer pending at a backward jump fires that much later (measured: heal to
        // replication up to 4.4 s after jumps of 3–9 s): an artifact, not a fault to survive.
        FAKETIME_DONT_FAKE_MONOTONIC: "1",
      });
    }
    this.exit = undefined;
    this.paused = false;
    const child = spawn("nsenter", args, { stdio: ["ignore", "pipe", "pipe"], env });
    this.process = child;
    const append = (data: Buffer): void => {
      this.log += data.toString();
      if (this.log.length > LOG_TAIL_BYTES * 2) this.log = this.log.slice(-LOG_TAIL_BYTES);
    };
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        this.log += `\n[chaos] node ${this.id} exited: code ${code} signal ${signal}\n`;
        resolve();
      }),
    );
  }

  /** Bootstrap flags of a first start in a cluster of `members`. */
  static bootstrapFlags(
    node: ChaosNode,
    members: readonly ChaosNode[],
    clusterId: string,
  ): string[] {
    return [
      "--id",
      String(node.id),
      "--cluster-id",
      clusterId,
      "--peer-listen",
      node.peerAddress,
      "--api-listen",
      node.apiAddress,
      "--initial-members",
      members.map((m) => `${m.id}=${m.peerAddress}@${m.apiAddress}`).join(","),
    ];
  }

  /** Flags of a first start that joins through `joinUrl`. */
  static joinFlags(node: ChaosNode, joinUrl: string, clusterId: string): string[] {
    return [
      "--id",
      String(node.id),
      "--cluster-id",
      clusterId,
      "--peer-listen",
      node.peerAddress,
      "--api-listen",
      node.apiAddress,
      "--join",
      joinUrl,
    ];
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.running || this.process?.pid === undefined) return;
    try {
      process.kill(this.process.pid, signal);
    } catch {
      // exited meanwhile
    }
    if (signal === "SIGSTOP") this.paused = true;
    if (signal === "SIGCONT") this.paused = false;
  }

  /** SIGKILLs the process and waits for it. */
  async kill(): Promise<void> {
    if (this.paused) this.signal("SIGCONT");
    this.signal("SIGKILL");
    await this.exited;
  }

  /** Waits for the exit at most `deadlineMs`; true if it exited. */
  async waitExit(deadlineMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>(
      (resolve) => (timer = setTimeout(() => resolve(false), deadlineMs)),
    );
    const result = await Promise.race([this.exited.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  /** Removes the data directory (a fresh member). */
  wipe(): void {
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** The last `lines` lines of the node's output. */
  tail(lines: number): string {
    return this.log.trimEnd().split("\n").slice(-lines).join("\n");
  }

  /** Whole output kept (tail-bounded). */
  get output(): string {
    return this.log;
  }

  /** The node's status, or undefined if it does not answer within `timeoutMs`. */
  async status(timeoutMs = STATUS_TIMEOUT_MS): Promise<NodeStatus | undefined> {
    try {
      const response = await fetch(`${this.apiUrl}/v1/cluster/status`, {
        headers: clientHeaders(),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (response.status !== 200) return undefined;
      return (await response.json()) as NodeStatus;
    } catch {
      return undefined;
    }
  }
}

/** Writes a libfaketime offset ("+0", "+5s", "-5s") that the node's process reads at once. */
export function setClockOffset(file: string, offset: string): void {
  writeFileSync(file, `${offset}\n`);
}
