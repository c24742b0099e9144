/**
 * A 3-node Blixard cluster of real `blixard node start` processes (bin/blixard.js, the compiled
 * dist/) on loopback, each with its own data directory on disk, default settings.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HttpPool } from "./http.js";
import {
  freePorts,
  killHard,
  logTail,
  spawnLogged,
  stopGracefully,
  until,
  type OwnedProcess,
} from "./procs.js";
import type { ClusterTarget } from "./target.js";

/** The CLI entry point the nodes run. */
export const BLIXARD_BIN = fileURLToPath(new URL("../../bin/blixard.js", import.meta.url));

interface StatusBody {
  readonly id: number;
  readonly leader: number | null;
}

/** The Blixard cluster under test. */
export class BlixardCluster implements ClusterTarget {
  readonly name = "blixard";
  readonly #root: string;
  readonly #dirs: string[] = [];
  readonly #apis: string[] = [];
  readonly #pools: HttpPool[] = [];
  readonly #procs: (OwnedProcess | undefined)[] = [];
  #firstArgs: string[][] = [];

  readonly #extraArgs: readonly string[];
  readonly #nodeFlags: readonly string[];

  constructor(
    root: string,
    readonly size = 3,
    /** Flags added to every member's start and restart (e.g. `--insecure`). */
    extraArgs: readonly string[] = [],
    /** Flags of the members' Node.js runtime (e.g. `--cpu-prof`), before the script. */
    nodeFlags: readonly string[] = [],
  ) {
    this.#root = root;
    this.#extraArgs = extraArgs;
    this.#nodeFlags = nodeFlags;
  }

  /** The API base URLs, by member index. */
  get endpoints(): readonly string[] {
    return this.#apis;
  }

  /** The data directories (each holds the member's `node.log`), by member index. */
  get dataDirs(): readonly string[] {
    return this.#dirs;
  }

  /** The member's `GET /v1/cluster/status` body. */
  async status(member: number): Promise<Record<string, unknown>> {
    return JSON.parse(
      await this.#pool(member).ok("GET", "/v1/cluster/status", undefined, 1000),
    ) as Record<string, unknown>;
  }

  async start(): Promise<void> {
    const ports = await freePorts(this.size * 2);
    const host = "127.0.0.1";
    const members = Array.from({ length: this.size }, (_, i) => ({
      id: i + 1,
      peer: `${host}:${ports[i]}`,
      api: `${host}:${ports[this.size + i]}`,
    }));
    const list = members.map((m) => `${m.id}=${m.peer}@http://${m.api}`).join(",");
    this.#firstArgs = members.map((m, i) => {
      const dir = join(this.#root, `blixard-${m.id}`);
      mkdirSync(dir, { recursive: true });
      this.#dirs[i] = dir;
      this.#apis[i] = `http://${m.api}`;
      this.#pools[i] = new HttpPool(`http://${m.api}`);
      return [
        "--data-dir",
        dir,
        "--id",
        String(m.id),
        "--cluster-id",
        "blixard-bench",
        "--peer-listen",
        m.peer,
        "--api-listen",
        m.api,
        "--initial-members",
        list,
        // Plain HTTP and open API, like the etcd it is compared with (TLS is the default now).
        "--insecure",
        ...this.#extraArgs,
      ];
    });
    this.#firstArgs.forEach((args, i) => this.#spawn(i, args));
    await this.waitForLeader(30_000);
  }

  #spawn(i: number, args: readonly string[]): void {
    const dir = this.#dirs[i] ?? "";
    this.#procs[i] = spawnLogged(
      process.execPath,
      [...this.#nodeFlags, BLIXARD_BIN, "node", "start", ...args],
      join(dir, "node.log"),
    );
  }

  #pool(member: number): HttpPool {
    const pool = this.#pools[member];
    if (pool === undefined) throw new Error(`no member ${member}`);
    return pool;
  }

  async waitForLeader(deadlineMs = 20_000): Promise<number> {
    return until(
      async () => {
        for (const p of this.#procs) {
          if (p?.hasExited() === true) {
            throw new Error(
              `a Blixard node exited; the end of ${p.logPath}:\n${logTail(p.logPath)}`,
            );
          }
        }
        const leaders = await Promise.all(
          this.#pools.map((pool) =>
            pool
              .ok("GET", "/v1/cluster/status", undefined, 1000)
              .then((body) => (JSON.parse(body) as StatusBody).leader)
              .catch(() => null),
          ),
        );
        const first = leaders[0];
        if (first === null || first === undefined || !leaders.every((l) => l === first)) {
          return undefined;
        }
        return first - 1;
      },
      "a Blixard leader known to every node",
      deadlineMs,
    );
  }

  async put(member: number, key: string, value: string, timeoutMs?: number): Promise<void> {
    await this.#pool(member).ok(
      "PUT",
      `/v1/kv/${encodeURIComponent(key)}`,
      JSON.stringify({ value }),
      timeoutMs,
    );
  }

  async get(member: number, key: string): Promise<void> {
    await this.#pool(member).ok("GET", `/v1/kv/${encodeURIComponent(key)}`);
  }

  async kill(member: number): Promise<void> {
    const p = this.#procs[member];
    if (p !== undefined) await killHard(p);
  }

  async restart(member: number): Promise<void> {
    // A restarted node needs only its data directory (node.json holds the rest), and
    // --insecure again: it is never remembered, so that it shows on every start.
    this.#spawn(member, ["--data-dir", this.#dirs[member] ?? "", "--insecure", ...this.#extraArgs]);
    await Promise.resolve();
  }

  pids(): number[] {
    return this.#procs.flatMap((p) => (p === undefined || p.hasExited() ? [] : [p.pid]));
  }

  async stop(): Promise<void> {
    for (const pool of this.#pools) pool.close();
    await stopGracefully(this.#procs.filter((p): p is OwnedProcess => p !== undefined));
  }
}
