/**
 * A cluster of real `blixard node start` processes on 127.0.0.1 with real data directories, for
 * multi-process integration tests: free ports found by binding port 0, one temporary root per
 * cluster, processes started from `bin/blixard.js`, signalled by pid (SIGKILL, SIGSTOP, SIGCONT,
 * SIGTERM), every line of their output kept so a failed test can show it, and everything torn
 * down by {@link ProcessCluster.destroy} (call it from `afterEach`/`afterAll`, whatever happened).
 * Waiting is polling with deadlines, never a bare sleep.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { freePorts } from "../../src/cli/dev/ports.js";
import { BlixardClient, type BlixardClientOptions } from "../../src/client/index.js";
import type { StatusResponse } from "../../src/api/schema/index.js";
import { request as httpsRequest } from "node:https";
import { BIN, CLI_CWD } from "../cli/helpers.js";
import { createTestPki, type TestPki } from "../cli/pki.js";

/**
 * The admin credentials of each running test cluster by API origin, so {@link http} can reach any
 * node of any cluster of this test file by its URL alone.
 */
const CREDENTIALS_BY_ORIGIN = new Map<string, TestPki["clientOptions"]>();

/** How a process ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One member of the cluster: its addresses, its data directory and its current process. */
export interface ClusterNode {
  readonly id: number;
  /** `127.0.0.1:port` of the peer transport. */
  readonly peerAddress: string;
  /** `127.0.0.1:port` of the HTTP API. */
  readonly apiAddress: string;
  /** `https://127.0.0.1:port/`. */
  readonly apiUrl: string;
  readonly dataDir: string;
  /** The running (or paused) process, if any. */
  process: NodeProcess | undefined;
}

/** One spawned process with its collected output. */
export class NodeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Settles when the process has exited. */
  readonly exited: Promise<Exit>;
  #exit: Exit | undefined;
  #output = "";

  constructor(
    readonly label: string,
    args: readonly string[],
    env: Readonly<Record<string, string>> = {},
  ) {
    this.child = spawn(process.execPath, [BIN, ...args], {
      cwd: CLI_CWD,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, BLIXARD_ENDPOINTS: "", ...env },
    });
    if (this.child.pid === undefined) throw new Error(`could not spawn ${label}`);
    this.pid = this.child.pid;
    this.child.stdout?.on("data", (d: Buffer) => (this.#output += d.toString()));
    this.child.stderr?.on("data", (d: Buffer) => (this.#output += d.toString()));
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      }),
    );
  }

  /** The exit, once the process has exited. */
  get exit(): Exit | undefined {
    return this.#exit;
  }

  /** Everything the process wrote to stdout and stderr so far. */
  get output(): string {
    return this.#output;
  }

  /** The output's JSON log lines (others skipped). */
  logLines(): Record<string, unknown>[] {
    const lines: Record<string, unknown>[] = [];
    for (const line of this.#output.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line cut by a kill
      }
    }
    return lines;
  }

  /** Sends `signal` to this pid, if it still runs. */
  signal(signal: NodeJS.Signals): void {
    if (this.#exit !== undefined) return;
    try {
      process.kill(this.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  }

  /** Waits for the exit at most `deadlineMs`. */
  waitExit(deadlineMs: number): Promise<Exit> {
    return withDeadline(this.exited, deadlineMs, `the exit of ${this.label} (pid ${this.pid})`);
  }
}

/** Polls `condition` every `intervalMs` until it returns something other than undefined. */
export async function until<T>(
  condition: () => T | undefined | Promise<T | undefined>,
  what: string | (() => string),
  deadlineMs = 20_000,
  intervalMs = 25,
): Promise<T> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined) return value;
    if (performance.now() > end) {
      throw new Error(
        `timed out after ${deadlineMs} ms waiting for ${typeof what === "string" ? what : what()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Resolves or rejects as `promise` does, or rejects after `deadlineMs`. */
export async function withDeadline<T>(
  promise: Promise<T>,
  deadlineMs: number,
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${deadlineMs} ms waiting for ${what}`)),
      deadlineMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** An HTTP answer: status and parsed JSON body (or the text, if it is not JSON). */
export interface HttpAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Headers;
}

/**
 * One raw HTTP(S) request (no client logic: no retries, no sessions). An `https://` node of a
 * {@link ProcessCluster} is reached with that cluster's CA and admin client certificate.
 */
export async function http(
  baseUrl: string,
  method: string,
  path: string,
  options: {
    readonly body?: string | Uint8Array;
    readonly headers?: Record<string, string>;
    readonly timeoutMs?: number;
    /**
     * Announce the body's length but never send it (https only): the answer to a body refused
     * for its length alone. Sending it would fail with EPIPE once the server answers and closes.
     */
    readonly announceBodyOnly?: boolean;
    /** Trust the cluster's CA but present no client certificate (an anonymous caller). */
    readonly withoutCertificate?: boolean;
  } = {},
): Promise<HttpAnswer> {
  const url = new URL(path, baseUrl);
  const headers: Record<string, string> = {
    ...(options.body === undefined ? {} : { "content-type": "application/json" }),
    ...options.headers,
  };
  if (url.protocol !== "https:") {
    const response = await fetch(url, {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: options.body }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
    });
    return answer(response.status, await response.text(), response.headers);
  }
  const known = CREDENTIALS_BY_ORIGIN.get(url.origin);
  const credentials =
    options.withoutCertificate === true && known !== undefined ? { ca: known.ca } : (known ?? {});
  return new Promise<HttpAnswer>((resolve, reject) => {
    const outgoing = httpsRequest(
      url,
      { method, headers, ...credentials, signal: AbortSignal.timeout(options.timeoutMs ?? 5000) },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("error", reject);
        response.on("end", () => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            if (typeof value === "string") responseHeaders.set(name, value);
          }
          resolve(
            answer(
              response.statusCode ?? 0,
              Buffer.concat(chunks).toString("utf8"),
              responseHeaders,
            ),
          );
          // An announce-only request is still open: close it now that the answer is in.
          if (options.announceBodyOnly === true) outgoing.destroy();
        });
      },
    );
    outgoing.on("error", reject);
    if (options.announceBodyOnly === true && options.body !== undefined) {
      outgoing.setHeader("content-length", Buffer.byteLength(options.body));
      outgoing.flushHeaders();
      return;
    }
    outgoing.end(options.body === undefined ? undefined : Buffer.from(options.body));
  });
}

function answer(status: number, text: string, headers: Headers): HttpAnswer {
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status, body, headers };
}

/** Options of {@link ProcessCluster.create}. */
export interface ProcessClusterOptions {
  readonly size: number;
  readonly clusterId?: string;
  /** A prefix of the temporary root's name. */
  readonly name?: string;
  /** Node log level (default info: lifecycle and refusals, not every message). */
  readonly logLevel?: "debug" | "info" | "warn";
  /** More `node start` flags for every first start (e.g. `--worker-dead-after-ms 2000`). */
  readonly extraArgs?: readonly string[];
}

/**
 * Every node gets its certificate in `<data-dir>/tls/` (where `node start` looks by default) from
 * one CA per cluster; clients and CLI runs get the CA and an admin client certificate.
 */

/** A cluster of real node processes. */
export class ProcessCluster {
  /** Every process ever started by this cluster, for cleanup and logs. */
  readonly #processes: NodeProcess[] = [];
  #destroyed = false;
  /**
   * The management token, once {@link bootstrapAcl} ran: status polls and {@link client} use
   * it, so the harness works against nodes that enforce authorization.
   */
  token: string | undefined;

  private constructor(
    readonly root: string,
    readonly clusterId: string,
    readonly nodes: readonly ClusterNode[],
    readonly logLevel: string,
    readonly extraArgs: readonly string[],
    /** The cluster's CA and admin credentials. */
    readonly pki: TestPki,
  ) {}

  /** Allocates ports and directories; starts nothing. */
  static async create(options: ProcessClusterOptions): Promise<ProcessCluster> {
    const root = mkdtempSync(join(tmpdir(), `${options.name ?? "blixard-cluster"}-`));
    const ports = await freePorts(options.size * 2);
    const nodes = Array.from({ length: options.size }, (_, i): ClusterNode => {
      const apiAddress = `127.0.0.1:${ports[options.size + i]!}`;
      return {
        id: i + 1,
        peerAddress: `127.0.0.1:${ports[i]!}`,
        apiAddress,
        apiUrl: `https://${apiAddress}/`,
        dataDir: join(root, `node-${i + 1}`),
        process: undefined,
      };
    });
    const clusterId = options.clusterId ?? "faults-test";
    const pki = await createTestPki(root, clusterId);
    for (const n of nodes) {
      await pki.provision(n.dataDir, n.id);
      CREDENTIALS_BY_ORIGIN.set(new URL(n.apiUrl).origin, pki.clientOptions);
    }
    return new ProcessCluster(
      root,
      clusterId,
      nodes,
      options.logLevel ?? "info",
      options.extraArgs ?? [],
      pki,
    );
  }

  /** The `--initial-members` value of this cluster. */
  get initialMembers(): string {
    return this.nodes.map((n) => `${n.id}=${n.peerAddress}@${n.apiAddress}`).join(",");
  }

  /** The node with this id. */
  node(id: number): ClusterNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** The pid of node `id`'s current process. */
  pid(id: number): number {
    const p = this.node(id).process;
    if (p === undefined) throw new Error(`node ${id} has no process`);
    return p.pid;
  }

  /** The full first-start flags of node `id`. */
  bootstrapArgs(id: number): string[] {
    const n = this.node(id);
    return [
      "node",
      "start",
      "--id",
      String(id),
      "--data-dir",
      n.dataDir,
      "--peer-listen",
      n.peerAddress,
      "--api-listen",
      n.apiAddress,
      "--initial-members",
      this.initialMembers,
      "--cluster-id",
      this.clusterId,
      "--log-level",
      this.logLevel,
      ...this.extraArgs,
    ];
  }

  /**
   * Starts node `id`: with the full bootstrap flags (`bootstrap`, a first start) or with
   * `--data-dir` alone (a restart from what is on disk), with `env` added to its environment.
   */
  start(
    id: number,
    mode: "bootstrap" | "restart" = "bootstrap",
    env: Readonly<Record<string, string>> = {},
  ): NodeProcess {
    const n = this.node(id);
    if (n.process !== undefined && n.process.exit === undefined) {
      throw new Error(`node ${id} is already running (pid ${n.process.pid})`);
    }
    const args =
      mode === "bootstrap"
        ? this.bootstrapArgs(id)
        : [
            "node",
            "start",
            "--data-dir",
            n.dataDir,
            "--log-level",
            this.logLevel,
            ...this.extraArgs,
          ];
    const p = this.spawn(`node ${id}`, args, env);
    n.process = p;
    return p;
  }

  /** Starts every node (see {@link start}). */
  startAll(mode: "bootstrap" | "restart" = "bootstrap"): void {
    for (const n of this.nodes) this.start(n.id, mode);
  }

  /** Spawns any `blixard` command as a tracked process (killed at {@link destroy}). */
  spawn(
    label: string,
    args: readonly string[],
    env: Readonly<Record<string, string>> = {},
  ): NodeProcess {
    if (this.#destroyed) throw new Error("the cluster was destroyed");
    const p = new NodeProcess(label, args, { ...this.pki.clientEnv, ...env });
    this.#processes.push(p);
    return p;
  }

  /** Runs a `blixard` command to its exit (at most `deadlineMs`). */
  async run(
    label: string,
    args: readonly string[],
    deadlineMs = 20_000,
  ): Promise<Exit & { output: string }> {
    const p = this.spawn(label, args);
    const exit = await p.waitExit(deadlineMs);
    return { ...exit, output: p.output };
  }

  /** Sends `signal` to node `id`'s process. */
  signal(id: number, signal: NodeJS.Signals): void {
    const p = this.node(id).process;
    if (p === undefined) throw new Error(`node ${id} has no process`);
    p.signal(signal);
  }

  /** SIGKILLs node `id` and waits for the exit. */
  async kill(id: number): Promise<Exit> {
    this.signal(id, "SIGKILL");
    return this.node(id).process!.waitExit(10_000);
  }

  /** SIGTERMs node `id` and waits for its graceful exit. */
  async stop(id: number, deadlineMs = 15_000): Promise<Exit> {
    this.signal(id, "SIGTERM");
    return this.node(id).process!.waitExit(deadlineMs);
  }

  /** Whether node `id` has a process that has not exited (it may be paused). */
  isUp(id: number): boolean {
    const p = this.node(id).process;
    return p !== undefined && p.exit === undefined;
  }

  /** One node's status, or undefined if it does not answer within `timeoutMs`. */
  async status(id: number, timeoutMs = 1000): Promise<StatusResponse | undefined> {
    try {
      const answer = await http(this.node(id).apiUrl, "GET", "/v1/cluster/status", {
        timeoutMs,
        ...(this.token === undefined ? {} : { headers: { authorization: `Bearer ${this.token}` } }),
      });
      return answer.status === 200 ? (answer.body as StatusResponse) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Waits until every node of `ids` (default: every node with a live process) names the same
   * leader, that leader is one of them, and it says it leads. Returns the leader's id.
   */
  async waitForLeader(ids?: readonly number[], deadlineMs = 30_000): Promise<number> {
    const among = ids ?? this.nodes.filter((n) => this.isUp(n.id)).map((n) => n.id);
    let last: unknown[] = [];
    return until(
      async () => {
        const statuses = await Promise.all(among.map((id) => this.status(id, 1500)));
        last = statuses.map((s) => (s === undefined ? "no answer" : [s.role, s.term, s.leader]));
        const leader = statuses[0]?.leader ?? null;
        if (leader === null || !among.includes(leader)) return undefined;
        if (!statuses.every((s) => s !== undefined && s.leader === leader)) return undefined;
        const own = statuses[among.indexOf(leader)];
        return own?.role === "leader" ? leader : undefined;
      },
      () => `one leader among nodes ${among.join(", ")} (last seen ${JSON.stringify(last)})`,
      deadlineMs,
    );
  }

  /**
   * Waits until `count` workers (default: every node) are online: each registers with its first
   * heartbeat after the election, so a fresh cluster has a leader before it has workers.
   */
  async waitForOnlineWorkers(client: BlixardClient, count = this.nodes.length): Promise<void> {
    await until(
      async () =>
        (await client.orchestrator.listWorkers()).filter((w) => w.status === "online").length ===
        count
          ? true
          : undefined,
      `${count} online workers`,
    );
  }

  /** A client of the given nodes (default: all), with the management token once there is one. */
  client(ids?: readonly number[], options: Partial<BlixardClientOptions> = {}): BlixardClient {
    const nodes = ids === undefined ? this.nodes : ids.map((id) => this.node(id));
    return new BlixardClient({
      endpoints: nodes.map((n) => n.apiUrl),
      ...this.pki.clientOptions,
      ...(this.token === undefined ? {} : { token: this.token }),
      ...options,
    });
  }

  /**
   * Bootstraps the ACL system through node `id` (the open route, once the cluster is ready)
   * and keeps the management token for the harness's own calls. Returns the secret.
   */
  async bootstrapAcl(id = 1): Promise<string> {
    const answer = await until(
      async () => {
        const a = await http(this.node(id).apiUrl, "POST", "/v1/acl/bootstrap").catch(
          () => undefined,
        );
        return a !== undefined && a.status !== 503 && a.status !== 421 ? a : undefined;
      },
      () => `the ACL bootstrap through node ${id}`,
      20_000,
    );
    if (answer.status !== 200)
      throw new Error(`bootstrap: ${answer.status} ${JSON.stringify(answer.body)}`);
    const token = (answer.body as { secret: string }).secret;
    this.token = token;
    // Each node checks tokens against its own applied ACL state: wait until every running node
    // has applied the bootstrap, so a client may use the token on any of them.
    await until(
      async () => {
        for (const n of this.nodes) {
          if (!this.isUp(n.id)) continue;
          const who = await http(n.apiUrl, "GET", "/v1/acl/whoami", {
            headers: { authorization: `Bearer ${token}` },
          }).catch(() => undefined);
          if (who?.status !== 200) return undefined;
        }
        return true;
      },
      "every node to know the bootstrap token",
      20_000,
    );
    return token;
  }

  /** A digest of every file under node `id`'s data directory (names and contents). */
  digest(id: number): string {
    const hash = createHash("sha256");
    const dir = this.node(id).dataDir;
    const walk = (path: string): void => {
      for (const entry of readdirSync(path, { withFileTypes: true }).sort((a, b) =>
        a.name < b.name ? -1 : 1,
      )) {
        const full = join(path, entry.name);
        hash.update(`${relative(dir, full)}\0`);
        if (entry.isDirectory()) walk(full);
        else hash.update(readFileSync(full));
      }
    };
    walk(dir);
    return hash.digest("hex");
  }

  /** The output of every process started so far, tail-limited per process. */
  logs(tailLines = 200): string {
    return this.#processes
      .map((p) => {
        const lines = p.output.trimEnd().split("\n");
        const shown = lines.slice(-tailLines).join("\n");
        const exit = p.exit === undefined ? "running" : JSON.stringify(p.exit);
        return `----- ${p.label} (pid ${p.pid}, ${exit}, last ${Math.min(tailLines, lines.length)} of ${lines.length} lines)\n${shown}`;
      })
      .join("\n");
  }

  /** Writes every process's full output under a kept directory; returns the directory. */
  saveLogs(): string {
    const dir = mkdtempSync(join(tmpdir(), "blixard-cluster-logs-"));
    mkdirSync(dir, { recursive: true });
    this.#processes.forEach((p, i) => {
      writeFileSync(join(dir, `${i}-${p.label.replace(/\W+/g, "-")}-${p.pid}.log`), p.output);
    });
    return dir;
  }

  /** SIGKILLs every process still running (paused ones too), waits for them and removes the root. */
  async destroy(): Promise<void> {
    this.#destroyed = true;
    const running = this.#processes.filter((p) => p.exit === undefined);
    for (const n of this.nodes) CREDENTIALS_BY_ORIGIN.delete(new URL(n.apiUrl).origin);
    for (const p of running) p.signal("SIGKILL");
    await Promise.all(running.map((p) => p.waitExit(10_000).catch(() => undefined)));
    rmSync(this.root, { recursive: true, force: true });
  }
}
