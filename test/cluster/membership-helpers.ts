/**
 * Helpers for the membership test: a cluster of real `blixard node start` processes on loopback
 * with free ports and data under one temporary directory, and polls of their status.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlixardClient, type NodeStatus } from "../../src/client/index.js";
import { freePorts } from "../../src/cli/dev/ports.js";
import { cli, exitWithin, start, until, type CliResult } from "../cli/helpers.js";
import { createTestPki, type TestPki } from "../cli/pki.js";

/** A node process started by the test. */
export type NodeProcess = ReturnType<typeof start>;

/** Ports, directories and processes of up to `size` nodes (ids 1..size). */
export class TestCluster {
  readonly root: string;
  readonly processes = new Map<number, NodeProcess>();
  readonly #ports: number[];
  readonly #size: number;
  /** The cluster's CA; every node has its certificate in `<data-dir>/tls/`. */
  readonly pki: TestPki;

  private constructor(root: string, ports: number[], size: number, pki: TestPki) {
    this.root = root;
    this.#ports = ports;
    this.#size = size;
    this.pki = pki;
  }

  /** Picks free ports for `size` nodes, a temporary root directory and TLS for `clusterId`. */
  static async create(size: number, prefix: string, clusterId: string): Promise<TestCluster> {
    const ports = await freePorts(2 * size);
    const root = mkdtempSync(join(tmpdir(), prefix));
    const pki = await createTestPki(root, clusterId);
    for (let id = 1; id <= size; id++) await pki.provision(join(root, `node-${id}`), id);
    return new TestCluster(root, ports, size, pki);
  }

  /** Runs a CLI command with the cluster's CA and admin certificate. */
  cli(args: readonly string[]): Promise<CliResult> {
    return cli(args, this.pki.clientEnv);
  }

  /** A client of nodes `ids` with the cluster's CA and admin certificate. */
  client(ids: readonly number[], options: { readonly timeoutMs?: number } = {}): BlixardClient {
    return new BlixardClient({
      endpoints: ids.map((id) => this.url(id)),
      ...this.pki.clientOptions,
      ...options,
    });
  }

  /** `host:port` of node `id`'s peer transport. */
  peer(id: number): string {
    return `127.0.0.1:${this.#ports[id - 1]}`;
  }

  /** `host:port` of node `id`'s API. */
  api(id: number): string {
    return `127.0.0.1:${this.#ports[this.#size + id - 1]}`;
  }

  /** The API base URL of node `id`. */
  url(id: number): string {
    return `https://${this.api(id)}`;
  }

  /** Node `id`'s data directory. */
  dir(id: number): string {
    return join(this.root, `node-${id}`);
  }

  /** `--initial-members` for nodes `ids`. */
  members(ids: readonly number[]): string {
    return ids.map((id) => `${id}=${this.peer(id)}@${this.api(id)}`).join(",");
  }

  /** Starts `blixard node start ...args` as node `id`. */
  start(id: number, args: readonly string[]): NodeProcess {
    const node = start(["node", "start", ...args]);
    this.processes.set(id, node);
    return node;
  }

  /** A client of node `id` alone that fails fast (for polls). */
  probe(id: number): BlixardClient {
    return new BlixardClient({
      endpoints: [this.url(id)],
      timeoutMs: 1000,
      retries: 0,
      ...this.pki.clientOptions,
    });
  }

  /** Node `id`'s status, or undefined if it does not answer. */
  async status(id: number): Promise<NodeStatus | undefined> {
    return this.probe(id)
      .status()
      .catch(() => undefined);
  }

  /** Waits until every node of `ids` names the same leader, which is one of `ids`; returns it. */
  async leader(ids: readonly number[], deadlineMs = 20_000): Promise<number> {
    return this.until(
      async () => {
        const statuses = await Promise.all(ids.map((id) => this.status(id)));
        const leader = statuses[0]?.leader;
        if (leader === null || leader === undefined || !ids.includes(leader)) return undefined;
        return statuses.every((s) => s?.leader === leader) ? leader : undefined;
      },
      `one leader among nodes ${ids.join(", ")}`,
      deadlineMs,
    );
  }

  /** Sends SIGTERM to node `id` and resolves with its exit code (15 s at most). */
  async stop(id: number): Promise<number | null> {
    const node = this.processes.get(id);
    if (node === undefined) return null;
    node.child.kill("SIGTERM");
    const code = await exitWithin(node.exited, 15_000);
    this.processes.delete(id);
    return code;
  }

  /** {@link until}, with the tail of every node's output in the error. */
  async until<T>(
    condition: () => T | undefined | Promise<T | undefined>,
    what: string,
    deadlineMs = 20_000,
  ): Promise<T> {
    try {
      return await until(condition, what, deadlineMs);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${this.output(30)}`, { cause: error });
    }
  }

  /** The output of every process, for failure messages. */
  output(lines = 200): string {
    return [...this.processes]
      .map(([id, p]) => `--- node ${id}\n${p.output().split("\n").slice(-lines).join("\n")}`)
      .join("\n");
  }

  /** SIGKILLs what still runs and removes the directory. */
  destroy(): void {
    for (const node of this.processes.values()) {
      if (node.child.exitCode === null && node.child.signalCode === null) {
        node.child.kill("SIGKILL");
      }
    }
    this.processes.clear();
    rmSync(this.root, { recursive: true, force: true });
  }
}
