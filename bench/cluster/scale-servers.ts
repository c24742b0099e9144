/**
 * The servers of the scale bench: three real `blixard node start` processes (bin/blixard.js, the
 * compiled dist/) on loopback, secure by default (mutual TLS, HTTPS API, certificates from
 * `scale-tls.ts`) or `--insecure`, with `--no-worker` when the build has it (servers only: the
 * agents run the work) and the given `--worker-dead-after-ms`.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { BlixardClient } from "../../src/client/index.js";
import { BLIXARD_BIN } from "./blixard.js";
import {
  freePorts,
  logTail,
  spawnLogged,
  stopGracefully,
  until,
  type OwnedProcess,
} from "./procs.js";
import { provisionScaleTls, type ScaleTls } from "./scale-tls.js";

/** Options of {@link ScaleServers}. */
export interface ScaleServersOptions {
  /** A directory the bench owns (data directories and certificates go under it). */
  readonly root: string;
  readonly size: number;
  /** Plain HTTP and no authentication. */
  readonly insecure: boolean;
  readonly workerDeadAfterMs: number;
  /** More `node start` flags. */
  readonly extraArgs?: readonly string[];
  /** Flags for node itself (e.g. `--cpu-prof`, which NODE_OPTIONS may not carry). */
  readonly nodeArgs?: readonly string[];
}

/** See the module comment. */
export class ScaleServers {
  readonly #options: ScaleServersOptions;
  readonly #procs: OwnedProcess[] = [];
  #endpoints: string[] = [];
  #tls: ScaleTls | undefined;
  /** Whether the servers run with `--no-worker` (the build knows it). */
  noWorker = false;

  constructor(options: ScaleServersOptions) {
    this.#options = options;
  }

  /** The API base URLs, by server index. */
  get endpoints(): readonly string[] {
    return this.#endpoints;
  }

  /** The TLS material (undefined with `insecure`). */
  get tls(): ScaleTls | undefined {
    return this.#tls;
  }

  /** Server `i`'s process id. */
  pid(i: number): number {
    const p = this.#procs[i];
    if (p === undefined) throw new Error(`no server ${i}`);
    return p.pid;
  }

  /** A client of the given servers (default all), with the root certificate when secure. */
  client(endpoints: readonly string[] = this.#endpoints): BlixardClient {
    return new BlixardClient({ endpoints, ...(this.#tls?.client ?? {}) });
  }

  /** Starts the servers and waits until all of them know the same leader. */
  async start(): Promise<void> {
    const { root, size, insecure, workerDeadAfterMs } = this.#options;
    this.noWorker = buildKnowsFlag("--no-worker");
    if (!insecure) {
      const dir = join(root, "tls");
      mkdirSync(dir, { recursive: true });
      this.#tls = await provisionScaleTls(dir, "blixard-scale", size);
    }
    const ports = await freePorts(size * 2);
    const host = "127.0.0.1";
    const scheme = insecure ? "http" : "https";
    const members = Array.from({ length: size }, (_, i) => ({
      id: i + 1,
      peer: `${host}:${ports[i]}`,
      api: `${host}:${ports[size + i]}`,
    }));
    const list = members.map((m) => `${m.id}=${m.peer}@${scheme}://${m.api}`).join(",");
    this.#endpoints = members.map((m) => `${scheme}://${m.api}`);
    for (const m of members) {
      const dir = join(root, `server-${m.id}`);
      mkdirSync(dir, { recursive: true });
      const args = [
        "node",
        "start",
        "--data-dir",
        dir,
        "--id",
        String(m.id),
        "--cluster-id",
        "blixard-scale",
        "--peer-listen",
        m.peer,
        "--api-listen",
        m.api,
        "--initial-members",
        list,
        "--worker-dead-after-ms",
        String(workerDeadAfterMs),
        // A thousand agents hold a long poll each, plus heartbeats and reports: room for them.
        "--api-max-connections",
        "8192",
        ...(this.noWorker ? ["--no-worker"] : []),
        ...(insecure ? ["--insecure"] : (this.#tls as ScaleTls).serverArgs(m.id)),
        ...(this.#options.extraArgs ?? []),
      ];
      this.#procs.push(
        spawnLogged(
          process.execPath,
          [...(this.#options.nodeArgs ?? []), BLIXARD_BIN, ...args],
          join(dir, "node.log"),
        ),
      );
    }
    await this.leaderIndex(30_000);
  }

  /** The index of the leader once every server names the same one. */
  async leaderIndex(deadlineMs = 20_000): Promise<number> {
    const clients = this.#endpoints.map((e) => this.client([e]));
    return until(
      async () => {
        for (const p of this.#procs) {
          if (p.hasExited()) {
            throw new Error(`a server exited; the end of ${p.logPath}:\n${logTail(p.logPath)}`);
          }
        }
        const leaders = await Promise.all(
          clients.map((c) =>
            c
              .status({ timeoutMs: 1000 })
              .then((s) => s.leader)
              .catch(() => null),
          ),
        );
        const first = leaders[0];
        if (first === null || first === undefined || !leaders.every((l) => l === first)) {
          return undefined;
        }
        return first - 1;
      },
      "a leader known to every server",
      deadlineMs,
    );
  }

  /** Stops every server (SIGTERM, then SIGKILL after the grace). */
  async stop(): Promise<void> {
    await stopGracefully(this.#procs);
  }
}

/** Whether `blixard node start --help` lists `flag` (the agents branch adds `--no-worker`). */
function buildKnowsFlag(flag: string): boolean {
  const help = spawnSync(process.execPath, [BLIXARD_BIN, "node", "start", "--help"], {
    encoding: "utf8",
  });
  return help.stdout.includes(flag);
}
