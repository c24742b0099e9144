/**
 * A 3-member etcd cluster (the `etcd` binary, e.g. Debian's etcd-server 3.4) on loopback with its
 * own data directories and default settings (100 ms heartbeat, 1 s election timeout), driven
 * through its v3 JSON gateway (`/v3/kv/put`, `/v3/kv/range`) over keep-alive HTTP. The members
 * and their lifecycle are the same for every client path: etcd-grpc.ts extends this class and
 * replaces only `put` and `get`.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { delimiter, join } from "node:path";
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

/** The path of an `etcd` binary on PATH (or $ETCD_BIN), with its version; undefined if none. */
export function findEtcd(): { path: string; version: string } | undefined {
  const candidates = [
    ...(process.env["ETCD_BIN"] === undefined ? [] : [process.env["ETCD_BIN"]]),
    ...(process.env["PATH"] ?? "").split(delimiter).map((dir) => join(dir, "etcd")),
  ];
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    const out = spawnSync(path, ["--version"], { encoding: "utf8", timeout: 10_000 });
    const version = /etcd Version:\s*(\S+)/.exec(out.stdout ?? "")?.[1];
    if (out.status === 0 && version !== undefined) return { path, version };
  }
  return undefined;
}

const b64 = (text: string): string => Buffer.from(text).toString("base64");

interface RangeBody {
  readonly kvs?: readonly { readonly value?: string }[];
}

interface StatusBody {
  readonly header?: { readonly member_id?: string };
  readonly leader?: string;
}

/** Options of an {@link EtcdCluster}. */
export interface EtcdClusterOptions {
  /** Number of members; 3 when undefined. */
  readonly size?: number;
  /** Its name in logs and reports; "etcd" when undefined. */
  readonly name?: string;
}

/** The etcd cluster under test. */
export class EtcdCluster implements ClusterTarget {
  readonly name: string;
  readonly size: number;
  readonly #bin: string;
  readonly #root: string;
  readonly #pools: HttpPool[] = [];
  readonly #procs: (OwnedProcess | undefined)[] = [];
  readonly #args: string[][] = [];
  readonly #dirs: string[] = [];

  /**
   * @param bin the `etcd` binary (see {@link findEtcd}).
   * @param root a directory for the members' data directories and logs.
   */
  constructor(bin: string, root: string, options: EtcdClusterOptions = {}) {
    this.#bin = bin;
    this.#root = root;
    this.size = options.size ?? 3;
    this.name = options.name ?? "etcd";
  }

  /** The client URLs (gRPC and the JSON gateway share the port), by member index; set by start. */
  get endpoints(): readonly string[] {
    return this.#pools.map((pool) => pool.baseUrl);
  }

  async start(): Promise<void> {
    const ports = await freePorts(this.size * 2);
    const host = "127.0.0.1";
    const names = Array.from({ length: this.size }, (_, i) => `etcd-${i + 1}`);
    const peerUrl = (i: number): string => `http://${host}:${ports[i]}`;
    const clientUrl = (i: number): string => `http://${host}:${ports[this.size + i]}`;
    const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(",");
    names.forEach((name, i) => {
      const dir = join(this.#root, name);
      mkdirSync(dir, { recursive: true });
      this.#dirs[i] = dir;
      this.#pools[i] = new HttpPool(clientUrl(i));
      this.#args[i] = [
        "--name",
        name,
        "--data-dir",
        join(dir, "data"),
        "--listen-peer-urls",
        peerUrl(i),
        "--initial-advertise-peer-urls",
        peerUrl(i),
        "--listen-client-urls",
        clientUrl(i),
        "--advertise-client-urls",
        clientUrl(i),
        "--initial-cluster",
        initialCluster,
        "--initial-cluster-token",
        "etcd-bench",
        "--initial-cluster-state",
        "new",
        "--logger",
        "zap",
        "--log-level",
        "warn",
      ];
      this.#spawn(i);
    });
    await this.waitForLeader(30_000);
  }

  #spawn(i: number): void {
    this.#procs[i] = spawnLogged(
      this.#bin,
      this.#args[i] ?? [],
      join(this.#dirs[i] ?? "", "etcd.log"),
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
              `an etcd member exited; the end of ${p.logPath}:\n${logTail(p.logPath)}`,
            );
          }
        }
        const statuses = await Promise.all(
          this.#pools.map((pool) =>
            pool
              .ok("POST", "/v3/maintenance/status", "{}", 1000)
              .then((body) => JSON.parse(body) as StatusBody)
              .catch(() => undefined),
          ),
        );
        const leader = statuses[0]?.leader;
        if (
          leader === undefined ||
          leader === "0" ||
          !statuses.every((s) => s !== undefined && s.leader === leader)
        ) {
          return undefined;
        }
        const index = statuses.findIndex((s) => s?.header?.member_id === leader);
        return index < 0 ? undefined : index;
      },
      "an etcd leader known to every member",
      deadlineMs,
    );
  }

  /** The member's `/v3/maintenance/status` body (raftTerm, raftIndex, raftAppliedIndex…). */
  async status(member: number): Promise<Record<string, unknown>> {
    return JSON.parse(
      await this.#pool(member).ok("POST", "/v3/maintenance/status", "{}", 1000),
    ) as Record<string, unknown>;
  }

  /** The data directories (each holds the member's `etcd.log`), by member index. */
  get dataDirs(): readonly string[] {
    return this.#dirs;
  }

  async put(member: number, key: string, value: string, timeoutMs?: number): Promise<void> {
    await this.#pool(member).ok(
      "POST",
      "/v3/kv/put",
      JSON.stringify({ key: b64(key), value: b64(value) }),
      timeoutMs,
    );
  }

  async get(member: number, key: string): Promise<void> {
    // Range requests are linearizable unless `serializable` is set.
    await this.#pool(member).ok("POST", "/v3/kv/range", JSON.stringify({ key: b64(key) }));
  }

  /**
   * The value at `key` read through the JSON gateway (linearizable), undefined if there is none;
   * for checks, not timed. Rejects on any failure.
   */
  async value(member: number, key: string): Promise<string | undefined> {
    const body = await this.#pool(member).ok(
      "POST",
      "/v3/kv/range",
      JSON.stringify({ key: b64(key) }),
    );
    const kv = (JSON.parse(body) as RangeBody).kvs?.[0];
    return kv === undefined ? undefined : Buffer.from(kv.value ?? "", "base64").toString();
  }

  async kill(member: number): Promise<void> {
    const p = this.#procs[member];
    if (p !== undefined) await killHard(p);
  }

  async restart(member: number): Promise<void> {
    // With an existing data directory etcd ignores the --initial-* flags and rejoins.
    this.#spawn(member);
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
