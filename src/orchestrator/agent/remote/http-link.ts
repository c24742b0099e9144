/**
 * An agent-only worker's link to the servers: HTTPS requests to one server at a time, with the
 * node's certificate (the servers authenticate it as node N, which may act for node N only), to
 * the next server in the list after a connection error or an UNAVAILABLE answer. Servers forward
 * heartbeats and reports to the leader themselves; the link never needs to know where it is.
 *
 * Three calls, one per route of the agent protocol (see `api/routes/agent-routes.ts`):
 * {@link AgentHttpLink.assignments} (the long poll), {@link AgentHttpLink.heartbeat} and
 * {@link AgentHttpLink.propose} (a report, or an `agentReports` batch whose answer carries one
outcome per report: the link is the agent's `Proposer`).
 *
 * Nothing here runs a driver or holds state beyond the server it talks to: a load harness can
 * make a thousand links in one process. Each link holds at most {@link AGENT_MAX_SOCKETS}
 * connections to its server.
 */
import type { DiskVerdict } from "../disk-verdict.js";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { request as httpsRequest, type Agent as HttpsAgent } from "node:https";
import {
  type BlixardError,
  CancelledError,
  ERROR_CODES,
  InvalidArgumentError,
  TimeoutError,
  UnavailableError,
  errorForCode,
  isBlixardError,
  type ErrorCode,
} from "../../../common/errors.js";
import type { Logger } from "../../../common/logger.js";
import { keepAliveHttpsAgent } from "../../../security/https-pool.js";
import type { NodeId } from "../../../raft/types.js";
import type { OrchestratorCommand } from "../../../statemachine/orchestrator/commands.js";
import type { Task, Vm, Worker } from "../../../statemachine/orchestrator/types.js";
import type { Proposer } from "../ports.js";

/**
 * Most reports one agent has in flight at once; the rest wait here (their deadline not yet
 * running). Reports come in bursts (every task it starts and ends, one key each), and the
 * agent's `Reporter` batches what waits, so one at a time costs no throughput; it leaves one of
 * the {@link AGENT_MAX_SOCKETS} connections to heartbeats whatever the reports do (a report waits
 * on the leader's apply, which an overloaded cluster makes slow: heartbeats behind it would get
 * agents cut off for the cluster's slowness). Heartbeats and the poll are not counted.
 */
export const MAX_REPORTS_IN_FLIGHT = 1;
/** Deadline of a heartbeat or a report. */
export const AGENT_REQUEST_TIMEOUT_MS = 5_000;
/**
 * How much sooner than the link's own deadline the server is told to give up (its answer is
 * then TIMEOUT): a slow server answers over the connection, which stays open, instead of the
 * link destroying it and paying a new TLS handshake on both ends just when the server is
 * overloaded. Only a server that says nothing for the whole deadline costs the connection.
 */
export const SERVER_DEADLINE_MARGIN_MS = 1_000;
/** Longest answer body read (a node's assignments with every task's spec). */
export const MAX_AGENT_ANSWER_BYTES = 64 * 1024 * 1024;
/** The header that carries a request's deadline to the server (see `api/schema/common.ts`). */
const TIMEOUT_HEADER = "blixard-timeout-ms";

/** One answer of the assignment poll (the model's own shapes, as the server sent them). */
export interface AssignmentsAnswer {
  /** The applied index the answer stands at. */
  readonly index: number;
  readonly worker: Worker | null;
  readonly tasks: readonly Task[];
  readonly vms: readonly Vm[];
}

/** What the leader answered a heartbeat. */
export interface HeartbeatAnswer {
  readonly leaderId: NodeId;
  readonly workerDeadAfterMs: number;
}

/** The node's certificate and the cluster's CA, PEM. */
export interface AgentTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** One HTTP exchange: what the link sends (tests fake it). */
export type HttpExchange = (request: {
  readonly url: URL;
  readonly method: "GET" | "POST";
  readonly body: string | undefined;
  readonly timeoutMs: number;
  /** The deadline the server is given (`blixard-timeout-ms`). */
  readonly serverTimeoutMs: number;
  readonly signal: AbortSignal | undefined;
}) => Promise<{ readonly status: number; readonly text: string }>;

/** Options of {@link AgentHttpLink}. */
export interface AgentHttpLinkOptions {
  readonly nodeId: NodeId;
  /** The servers' API URLs; at least one, all `https:` with `tls`, all `http:` without. */
  readonly servers: readonly URL[];
  /** Absent: plain HTTP (`--insecure`). */
  readonly tls?: AgentTls;
  readonly log: Logger;
  /**
   * The pool to send with (default: one of this link's own, {@link agentHttpsPool}). A pool
   * presents one identity: give it this node's certificate only.
   */
  readonly httpsAgent?: HttpsAgent;
  /** The exchange (default: node:http(s)). */
  readonly exchange?: HttpExchange;
}

/** See the module comment. */
export class AgentHttpLink implements Proposer {
  readonly #options: AgentHttpLinkOptions;
  readonly #exchange: HttpExchange;
  #current = 0;
  #reportsInFlight = 0;
  readonly #reportQueue: (() => void)[] = [];

  /** @throws InvalidArgumentError without servers, or with a scheme that does not fit `tls`. */
  constructor(options: AgentHttpLinkOptions) {
    if (options.servers.length === 0) {
      throw new InvalidArgumentError("an agent needs at least one server URL (--servers)");
    }
    const scheme = options.tls === undefined ? "http:" : "https:";
    for (const url of options.servers) {
      if (url.protocol !== scheme) {
        throw new InvalidArgumentError(
          `server URL ${url.href} is not ${scheme}//: ` +
            (options.tls === undefined
              ? "an --insecure agent talks plain HTTP to --insecure servers"
              : "servers serve HTTPS unless started with --insecure"),
        );
      }
    }
    this.#options = options;
    this.#exchange = options.exchange ?? nodeExchange(options);
    // Agents start on different servers (by id), so a thousand of them do not all hold their
    // polls and heartbeats on the first server of the list.
    this.#current = options.nodeId % options.servers.length;
  }

  /** The server the next request goes to. */
  get server(): URL {
    return this.#options.servers[this.#current] as URL;
  }

  /**
   * The node's assignments once they changed after index `after`, or after `waitMs`.
   * @throws the server's typed error; UnavailableError when it cannot be reached.
   */
  async assignments(
    after: number,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<AssignmentsAnswer> {
    const query = `nodeId=${this.#options.nodeId}&after=${after}&waitMs=${waitMs}`;
    const answer = await this.#call("GET", `/v1/agent/assignments?${query}`, undefined, {
      // The server answers before its own deadline; this one covers a server that went silent.
      timeoutMs: waitMs + AGENT_REQUEST_TIMEOUT_MS,
      serverTimeoutMs: waitMs + SERVER_DEADLINE_MARGIN_MS,
      signal,
    });
    return readAssignments(answer);
  }

  /**
   * What a server's model says of this node's stored disks of the VMs `names` (see
   * `disk-verdict.ts`), for the VMs its assignments do not show.
   * @throws the server's typed error; UnavailableError when it cannot be reached or its answer is
   *   malformed.
   */
  async disks(names: readonly string[]): Promise<ReadonlyMap<string, DiskVerdict>> {
    const answer = (await this.#call("POST", "/v1/agent/disks", {
      nodeId: this.#options.nodeId,
      names,
    })) as { disks?: unknown } | null;
    if (!Array.isArray(answer?.disks)) {
      throw new UnavailableError("a server sent a malformed disks answer; retrying later");
    }
    const verdicts = new Map<string, DiskVerdict>();
    for (const item of answer.disks as { name?: unknown; verdict?: unknown }[]) {
      const { name, verdict } = item ?? {};
      if (typeof name !== "string" || !names.includes(name)) continue;
      if (verdict === "keep" || verdict === "deleted" || verdict === "elsewhere") {
        verdicts.set(name, verdict);
      }
    }
    return verdicts;
  }

  /** Tells the leader (through any server) that the node is alive. */
  async heartbeat(): Promise<HeartbeatAnswer> {
    const answer = (await this.#call("POST", "/v1/agent/heartbeat", {
      nodeId: this.#options.nodeId,
    })) as Partial<HeartbeatAnswer> | null;
    return {
      leaderId: Number(answer?.leaderId ?? 0),
      workerDeadAfterMs: Number(answer?.workerDeadAfterMs ?? 0),
    };
  }

  /**
   * Proposes a report or a batch of them (forwarded to the leader by the server); resolves with
   * the server's answer (`{accepted, items?}`). At most {@link MAX_REPORTS_IN_FLIGHT} requests
   * at once; the rest wait their turn here.
   */
  async propose(command: OrchestratorCommand): Promise<unknown> {
    if (this.#reportsInFlight >= MAX_REPORTS_IN_FLIGHT) {
      await new Promise<void>((resolve) => this.#reportQueue.push(resolve));
    } else {
      this.#reportsInFlight++;
    }
    try {
      return await this.#call("POST", "/v1/agent/reports", { command });
    } finally {
      // Hand the slot on to the next waiting report, or free it.
      const next = this.#reportQueue.shift();
      if (next === undefined) this.#reportsInFlight--;
      else next();
    }
  }

  async #call(
    method: "GET" | "POST",
    path: string,
    body: unknown,
    options: {
      readonly timeoutMs?: number;
      readonly serverTimeoutMs?: number;
      readonly signal?: AbortSignal | undefined;
    } = {},
  ): Promise<unknown> {
    const server = this.server;
    const url = new URL(path, server);
    const timeoutMs = options.timeoutMs ?? AGENT_REQUEST_TIMEOUT_MS;
    url.searchParams.sort();
    let answer;
    try {
      answer = await this.#exchange({
        url,
        method,
        body: body === undefined ? undefined : JSON.stringify(body),
        timeoutMs,
        serverTimeoutMs: options.serverTimeoutMs ?? timeoutMs - SERVER_DEADLINE_MARGIN_MS,
        signal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted === true) throw error;
      this.#rotate(server, String((error as Error).message));
      throw isBlixardError(error)
        ? error
        : new UnavailableError(
            `could not reach server ${server.href}: ${(error as Error).message}`,
          );
    }
    let parsed: unknown;
    try {
      parsed = answer.text === "" ? null : JSON.parse(answer.text);
    } catch {
      parsed = undefined;
    }
    if (answer.status >= 200 && answer.status < 300) return parsed;
    const error = errorFromBody(answer.status, parsed, server);
    if (error.code === "UNAVAILABLE") this.#rotate(server, error.message);
    throw error;
  }

  /** Moves on to the next server, unless another request already did. */
  #rotate(failed: URL, why: string): void {
    if (this.server.href !== failed.href || this.#options.servers.length === 1) return;
    this.#current = (this.#current + 1) % this.#options.servers.length;
    this.#options.log.debug("server unreachable; trying the next one", {
      failed: failed.href,
      next: this.server.href,
      why,
    });
  }
}

/** The typed error of an error answer. Throws nothing. */
function errorFromBody(status: number, body: unknown, server: URL): BlixardError {
  const fields = (body ?? {}) as { code?: unknown; message?: unknown; leaderHint?: unknown };
  const code = typeof fields.code === "string" ? fields.code : undefined;
  const message =
    typeof fields.message === "string"
      ? fields.message
      : `server ${server.href} answered ${status}`;
  if (code !== undefined && code !== "STORAGE_CORRUPT" && code in ERROR_CODES) {
    return errorForCode(code as Exclude<ErrorCode, "STORAGE_CORRUPT">, message);
  }
  return status >= 500
    ? new UnavailableError(`server ${server.href} answered ${status}: ${message}`)
    : errorForCode("INTERNAL", `server ${server.href} answered ${status}: ${message}`);
}

/**
 * An answer of the assignment poll, checked for its shape (the servers are trusted, but a bad
 * answer must end as an error, not as a crash in the reconcile loop).
 * @throws UnavailableError for a malformed answer.
 */
export function readAssignments(value: unknown): AssignmentsAnswer {
  const answer = value as Partial<AssignmentsAnswer> | null;
  if (
    answer === null ||
    typeof answer !== "object" ||
    !Number.isSafeInteger(answer.index) ||
    !Array.isArray(answer.tasks) ||
    !Array.isArray(answer.vms) ||
    (answer.worker !== null && typeof answer.worker !== "object")
  ) {
    throw new UnavailableError("a server sent a malformed assignments answer; retrying");
  }
  return answer as AssignmentsAnswer;
}

/**
 * Connections an agent keeps to a server: in practice one for the assignment long poll (held for
 * seconds), one for its report in flight ({@link MAX_REPORTS_IN_FLIGHT}) and one for heartbeats;
 * a request finding none free waits in the pool, within its deadline. One pool, so the second and
 * third connections resume the first one's TLS session instead of a full handshake each.
 * Unbounded, a burst of reports and heartbeats (each waiting on the leader's apply) opened a
 * socket per request, each a TLS handshake on both ends, kept open after, and every request that
 * timed out cost another: a thousand agents (bench:scale) opened 10,000 connections in a 25 s
 * burst of work, and opening them took a quarter of their CPU.
 */
export const AGENT_MAX_SOCKETS = 3;

/** An agent's keep-alive pool to the servers with its node certificate (see {@link AGENT_MAX_SOCKETS}). */
export function agentHttpsPool(tls: AgentTls): HttpsAgent {
  return keepAliveHttpsAgent(tls, {
    maxSockets: AGENT_MAX_SOCKETS,
    maxFreeSockets: AGENT_MAX_SOCKETS,
  });
}

/** The same pool for an `--insecure` agent (plain HTTP). */
function agentHttpPool(): HttpAgent {
  return new HttpAgent({
    keepAlive: true,
    maxSockets: AGENT_MAX_SOCKETS,
    maxFreeSockets: AGENT_MAX_SOCKETS,
  });
}

/**
 * The real exchange over node:http(s), with the node's certificate. One timer per request for its
 * deadline and one listener on the caller's signal, both dropped when it settles: an
 * `AbortSignal.timeout` (combined with the caller's by `AbortSignal.any`) made two signals per
 * request whose timers fired long after the answer, each building an abort error nobody read.
 */
export function nodeExchange(
  options: Pick<AgentHttpLinkOptions, "tls" | "httpsAgent">,
): HttpExchange {
  const tls = options.tls;
  const pool: HttpAgent | HttpsAgent =
    tls === undefined ? agentHttpPool() : (options.httpsAgent ?? agentHttpsPool(tls));
  return ({ url, method, body, timeoutMs, serverTimeoutMs, signal }) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(new CancelledError("the request was cancelled before it was sent"));
        return;
      }
      const headers: Record<string, string> = { [TIMEOUT_HEADER]: String(serverTimeoutMs) };
      if (body !== undefined) {
        headers["content-type"] = "application/json";
        headers["content-length"] = String(Buffer.byteLength(body));
      }
      let settled = false;
      /** Why the request was ended here (the deadline, the caller): what it rejects with. */
      let ended: Error | undefined;
      const end = (why: Error): void => {
        ended ??= why;
        outgoing.destroy(why);
      };
      const settle = (error: Error | undefined, answer?: { status: number; text: string }) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        signal?.removeEventListener("abort", onAbort);
        if (error === undefined) resolve(answer as { status: number; text: string });
        else reject(ended ?? error);
      };
      const outgoing = (url.protocol === "https:" ? httpsRequest : httpRequest)(
        url,
        { method, headers, agent: pool },
        (response) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          response.on("data", (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes > MAX_AGENT_ANSWER_BYTES) {
              response.destroy(new Error(`answer over ${MAX_AGENT_ANSWER_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          response.on("error", (error) => settle(error));
          response.on("end", () =>
            settle(undefined, {
              status: response.statusCode ?? 502,
              text: (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString(
                "utf8",
              ),
            }),
          );
        },
      );
      // Destroying the request ends it at any stage: waiting for a socket in the pool (which then
      // goes to the next request), sending, or reading the answer.
      const deadline = setTimeout(
        () => end(new TimeoutError(`server ${url.origin} did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = (): void => end(new CancelledError("the request was cancelled"));
      signal?.addEventListener("abort", onAbort, { once: true });
      outgoing.on("error", (error) => settle(error));
      // Closed without an answer and without an error (should not happen): still settle. The
      // error is made only then (every request closes, and an error's stack is not free).
      outgoing.on("close", () => {
        if (!settled) {
          settle(new UnavailableError(`server ${url.origin} closed the request without an answer`));
        }
      });
      outgoing.end(body);
    });
}
