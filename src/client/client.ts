/**
 * The TypeScript SDK: a typed client for a Blixard cluster. It finds the leader (following the
 * leader address a node reports when it forwarded a request, and NOT_LEADER hints), moves on
 * to the next endpoint when one is down, and retries what is safe to retry. Writes carry an
 * automatic client session, and a retry resends the same sequence, so a write is applied once
 * however often it is retried.
 */
import {
  CancelledError,
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  NotLeaderError,
  TimeoutError,
  UnavailableError,
  isBlixardError,
  type BlixardError,
} from "../common/errors.js";
import {
  HEADERS,
  valueFromResponse,
  type AddMemberBody,
  type CasResponse,
  type ConfigResponse,
  type DeleteResponse,
  type GetResponse,
  type KvEntryJson,
  type ListResponse,
  type MembersResponse,
  type PutResponse,
  type StatusResponse,
} from "../api/schema/index.js";
import { errorFromResponse } from "./errors.js";
import type { Agent as HttpsAgent } from "node:https";
import {
  ExchangeFailure,
  exchange,
  httpsAgentFor,
  type HttpRequest,
  type HttpResponse,
} from "./http.js";
import { OrchestratorClient } from "./orchestrator.js";
import {
  eventStream,
  watchBatchStream,
  watchStream,
  type ClusterEvent,
  type EventsOptions,
  type StreamTransport,
  type WatchEvent,
  type WatchOptions,
} from "./streams.js";
import { AclClient } from "./acl.js";
import { CoordinationClient } from "./coordination.js";
import { OperatorClient } from "./operator.js";
import { ClientSessionState } from "./session.js";
import type {
  CasExpected,
  CasResult,
  ClusterConfig,
  DeleteResult,
  GetResult,
  KvEntry,
  ListOptions,
  ListResult,
  PutResult,
  ReadRequestOptions,
  RequestOptions,
} from "./types.js";

/** Options of a {@link BlixardClient}. */
export interface BlixardClientOptions {
  /** API base URLs of some nodes (any subset; the leader is found from them). */
  readonly endpoints: readonly (string | URL)[];
  /** Deadline of one call, retries included. Default 10 000 ms. */
  readonly timeoutMs?: number;
  /** Retries after the first attempt, at most. Default 6. */
  readonly retries?: number;
  /** The first retry's back-off; doubles up to {@link MAX_BACKOFF_MS}. Default 25 ms. */
  readonly backoffMs?: number;
  /** The CA that signed the nodes' certificates, PEM (for `https://` endpoints). Default: the system's. */
  readonly ca?: string;
  /** A client certificate to present, PEM (with {@link key}). */
  readonly cert?: string;
  /** The client certificate's private key, PEM. */
  readonly key?: string;
  /** An ACL token, sent as `Authorization: Bearer <token>` on every request. */
  readonly token?: string;
}

/** The longest back-off between two attempts. */
export const MAX_BACKOFF_MS = 1000;
/** A call's deadline, retries included, when the options give none. */
export const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRIES = 6;
const DEFAULT_BACKOFF_MS = 25;

/** How safely a call may be retried. */
type RetrySafety =
  /** Reads and sessioned writes: any transient failure. */
  | "idempotent"
  /** Other writes: only failures that prove the request was not executed. */
  | "not-executed";

const encodeKey = (key: string): string => encodeURIComponent(key);

function entryFromJson(json: KvEntryJson): KvEntry {
  return {
    key: json.key,
    value: valueFromResponse(json),
    ...(json.value === undefined ? {} : { valueText: json.value }),
    createRevision: json.createRevision,
    modRevision: json.modRevision,
    version: json.version,
  };
}

function valueFields(value: Uint8Array | string): { value: string } | { valueBase64: string } {
  return typeof value === "string"
    ? { value }
    : {
        valueBase64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString(
          "base64",
        ),
      };
}

/** A client of a Blixard cluster. Safe to share; calls may run concurrently. */
export class BlixardClient {
  readonly #endpoints: URL[];
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #backoffMs: number;
  readonly #httpsAgent: HttpsAgent;
  readonly #authorization: Record<string, string>;
  readonly #session = new ClientSessionState(() => crypto.randomUUID());
  /** The node believed to lead (where requests go first). */
  #preferred: URL | undefined;
  #cursor = 0;

  /** Workers, tasks, VMs and settings, with the same sessions and retries as kv calls. */
  readonly orchestrator = new OrchestratorClient({
    read: (request, options) => this.#call(request, "idempotent", options),
    write: (request, options) => this.#write(request, options),
    once: (request, options) => this.#call(request, "not-executed", options),
    stream: () => this.#streamTransport(),
  });

  /** Leases, txns and the blocking wait (locks and elections: `lock.ts`). */
  readonly coord = new CoordinationClient({
    read: (request, options) => this.#call(request, "idempotent", options),
    write: (request, options) => this.#write(request, options),
  });

  /** Policies, tokens, certificate bindings and whoami. */
  readonly acl = new AclClient({
    read: (request, options) => this.#call(request, "idempotent", options),
    write: (request, options) => this.#write(request, options),
  });

  /** Backups of the whole replicated state. */
  readonly operator = new OperatorClient({
    read: (request, options) => this.#call(request, "idempotent", options),
    write: (request, options) => this.#write(request, options),
  });

  /** @throws InvalidArgumentError on no endpoints, a malformed URL or a bad option. */
  constructor(options: BlixardClientOptions) {
    this.#authorization =
      options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
    if (options.endpoints.length === 0)
      throw new InvalidArgumentError("give at least one endpoint");
    this.#endpoints = options.endpoints.map((e) => {
      if (e instanceof URL) return e;
      if (!URL.canParse(e))
        throw new InvalidArgumentError(`endpoint ${JSON.stringify(e)} is not a URL`);
      return new URL(e);
    });
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#retries = options.retries ?? DEFAULT_RETRIES;
    this.#backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
    if ((options.cert === undefined) !== (options.key === undefined)) {
      throw new InvalidArgumentError("a client certificate needs both cert and key");
    }
    this.#httpsAgent = httpsAgentFor({
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.cert === undefined ? {} : { cert: options.cert }),
      ...(options.key === undefined ? {} : { key: options.key }),
    });
    if (options.token !== undefined && !/^[\x21-\x7e]+$/.test(options.token)) {
      throw new InvalidArgumentError("the token must be printable ASCII without spaces");
    }
    this.#authorization =
      options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
    for (const [name, value, least] of [
      ["timeoutMs", this.#timeoutMs, 1],
      ["retries", this.#retries, 0],
      ["backoffMs", this.#backoffMs, 0],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < least) {
        throw new InvalidArgumentError(`${name} must be an integer ≥ ${least}, got ${value}`);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Streams

  /**
   * Every applied change of `options.topics` in log order, as an async iterable that resumes by
   * itself across disconnects and nodes (each event once, in order). Ends when `options.signal`
   * aborts or the loop breaks.
   * @throws GoneError if the index to resume from is no longer kept on any endpoint;
   * PermissionDeniedError without a topic's read permission.
   */
  events(options: EventsOptions = {}): AsyncGenerator<ClusterEvent> {
    return eventStream(this.#streamTransport(), options);
  }

  /**
   * The puts and deletes of a key or prefix in revision order (etcd's watch), resuming by
   * itself: none skipped or repeated across reconnects.
   * @throws GoneError if the revision to resume from was compacted on every endpoint;
   * PermissionDeniedError without read permission on the key or prefix.
   */
  watch(options: WatchOptions = {}): AsyncGenerator<WatchEvent> {
    return watchStream(this.#streamTransport(), options);
  }

  /**
   * {@link watch}, the events of each message the node sent as one array, in order (like an
   * etcd watch response): for a watcher of a busy prefix, one step of the iteration per message
   * rather than per event is most of what reading the watch costs.
   * @throws as {@link watch}.
   */
  watchBatches(options: WatchOptions = {}): AsyncGenerator<readonly WatchEvent[]> {
    return watchBatchStream(this.#streamTransport(), options);
  }

  #streamTransport(): StreamTransport {
    return {
      endpoints: this.#endpoints,
      headers: this.#authorization,
      httpsAgent: this.#httpsAgent,
      connectTimeoutMs: this.#timeoutMs,
      backoffMs: Math.max(this.#backoffMs, 50),
    };
  }

  /** Where requests go first: the known leader, else the next endpoint. */
  get leaderEndpoint(): URL | undefined {
    return this.#preferred;
  }

  /** The client id of the current automatic session. */
  get clientId(): string {
    return this.#session.clientId;
  }

  // ---------------------------------------------------------------------------------------------
  // Key-value

  /**
   * Reads a key; null if it does not exist.
   * @throws the typed errors of the API (TimeoutError, CancelledError, UnavailableError, …).
   */
  async get(key: string, options: ReadRequestOptions = {}): Promise<GetResult | null> {
    try {
      const body = (await this.#call(
        { method: "GET", path: `/v1/kv/${encodeKey(key)}${consistencyQuery(options)}` },
        "idempotent",
        options,
      )) as GetResponse;
      return { revision: body.revision, entry: entryFromJson(body.entry) };
    } catch (error) {
      if (error instanceof NotFoundError) return null;
      throw error;
    }
  }

  /** Writes a value (bytes, or a string as UTF-8), exactly once. */
  async put(
    key: string,
    value: Uint8Array | string,
    options: RequestOptions & { readonly returnPrevious?: boolean; readonly lease?: number } = {},
  ): Promise<PutResult> {
    const body = (await this.#write(
      {
        method: "PUT",
        path: `/v1/kv/${encodeKey(key)}`,
        body: {
          ...valueFields(value),
          ...(options.returnPrevious === undefined
            ? {}
            : { returnPrevious: options.returnPrevious }),
          ...(options.lease === undefined ? {} : { lease: options.lease }),
        },
      },
      options,
    )) as PutResponse;
    return {
      revision: body.revision,
      ...(body.previous === undefined ? {} : { previous: entryFromJson(body.previous) }),
    };
  }

  /** Deletes a key, exactly once; `deleted` is false if it did not exist. */
  async delete(
    key: string,
    options: RequestOptions & { readonly returnPrevious?: boolean } = {},
  ): Promise<DeleteResult> {
    const query = options.returnPrevious === true ? "?returnPrevious=true" : "";
    const body = (await this.#write(
      { method: "DELETE", path: `/v1/kv/${encodeKey(key)}${query}` },
      options,
    )) as DeleteResponse;
    return {
      deleted: body.deleted,
      revision: body.revision,
      ...(body.previous === undefined ? {} : { previous: entryFromJson(body.previous) }),
    };
  }

  /** Writes `value` if the key is as `expected`, exactly once. A failed comparison is a result. */
  async cas(
    key: string,
    request: { readonly expected: CasExpected; readonly value: Uint8Array | string },
    options: RequestOptions = {},
  ): Promise<CasResult> {
    const e = request.expected;
    const expected =
      "absent" in e
        ? { absent: true }
        : "modRevision" in e
          ? { modRevision: e.modRevision }
          : valueFields(e.value);
    const body = (await this.#write(
      {
        method: "POST",
        path: `/v1/kv/${encodeKey(key)}/cas`,
        body: { expected, ...valueFields(request.value) },
      },
      options,
    )) as CasResponse;
    if (body.succeeded) return { succeeded: true, revision: body.revision };
    const current = body.current ?? null;
    return {
      succeeded: false,
      revision: body.revision,
      current: current === null ? null : entryFromJson(current),
    };
  }

  /** One page of keys, in key order; pass `nextStart` as `start` for the next page. */
  async list(options: ListOptions = {}): Promise<ListResult> {
    const query = new URLSearchParams();
    if (options.prefix !== undefined) query.set("prefix", options.prefix);
    if (options.start !== undefined) query.set("start", options.start);
    if (options.end !== undefined) query.set("end", options.end);
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.consistency !== undefined) query.set("consistency", options.consistency);
    const text = query.toString();
    const body = (await this.#call(
      { method: "GET", path: `/v1/kv${text === "" ? "" : `?${text}`}` },
      "idempotent",
      options,
    )) as ListResponse;
    return {
      entries: body.entries.map(entryFromJson),
      revision: body.revision,
      more: body.more,
      ...(body.nextStart === undefined ? {} : { nextStart: body.nextStart }),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Cluster

  /** The status of the node that answers (the leader when it is known). */
  async status(options: RequestOptions = {}): Promise<StatusResponse> {
    return (await this.#call(
      { method: "GET", path: "/v1/cluster/status" },
      "idempotent",
      options,
    )) as StatusResponse;
  }

  /** The members as the answering node knows them. */
  async members(options: RequestOptions = {}): Promise<MembersResponse> {
    return (await this.#call(
      { method: "GET", path: "/v1/cluster/members" },
      "idempotent",
      options,
    )) as MembersResponse;
  }

  /** Adds a learner; resolves with the new configuration. */
  async addLearner(member: AddMemberBody, options: RequestOptions = {}): Promise<ClusterConfig> {
    return this.#change({ method: "POST", path: "/v1/cluster/members", body: member }, options);
  }

  /** Promotes a caught-up learner to voter. */
  async promote(id: number, options: RequestOptions = {}): Promise<ClusterConfig> {
    return this.#change({ method: "POST", path: `/v1/cluster/members/${id}/promote` }, options);
  }

  /**
   * Promotes learner `promote` and removes member `remove` in one joint-consensus change;
   * resolves with the joint configuration (the cluster leaves it on its own).
   */
  async replaceMember(
    remove: number,
    promote: number,
    options: RequestOptions = {},
  ): Promise<ClusterConfig> {
    return this.#change(
      { method: "POST", path: "/v1/cluster/replace", body: { remove, promote } },
      options,
    );
  }

  /** Removes a member. */
  async removeMember(id: number, options: RequestOptions = {}): Promise<ClusterConfig> {
    return this.#change({ method: "DELETE", path: `/v1/cluster/members/${id}` }, options);
  }

  /** Hands leadership to voter `id`; resolves once it leads. */
  async transferLeader(id: number, options: RequestOptions = {}): Promise<void> {
    await this.#call(
      { method: "POST", path: "/v1/cluster/transfer-leader", body: { id } },
      "not-executed",
      options,
    );
    this.#preferred = undefined;
  }

  async #change(request: HttpRequest, options: RequestOptions): Promise<ClusterConfig> {
    return ((await this.#call(request, "not-executed", options)) as ConfigResponse).config;
  }

  // ---------------------------------------------------------------------------------------------
  // Sessions, retries and leader discovery

  async #write(request: HttpRequest, options: RequestOptions): Promise<unknown> {
    const ticket = await this.#session.begin();
    let succeeded = false;
    let abandon = false;
    try {
      const result = await this.#call(request, "idempotent", options, () => ({
        [HEADERS.clientId]: ticket.clientId,
        [HEADERS.sequence]: String(ticket.sequence),
        [HEADERS.ackedBelow]: String(ticket.ackedBelow()),
      }));
      succeeded = true;
      return result;
    } catch (error) {
      // The node no longer knows the session: open a fresh one for the next write.
      abandon = error instanceof ConflictError && error.message.startsWith("SESSION_EXPIRED");
      throw error;
    } finally {
      this.#session.finish(ticket, { succeeded, abandon });
    }
  }

  async #call(
    request: HttpRequest,
    safety: RetrySafety,
    options: RequestOptions,
    sessionHeaders?: () => Record<string, string>,
  ): Promise<unknown> {
    const timeoutMs = wholeMilliseconds(options.timeoutMs ?? this.#timeoutMs);
    const startedMs = performance.now();
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal =
      options.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline]);
    // A read changes nothing, so only a write leaves its outcome in doubt.
    const isRead = request.method === "GET";
    const outcome = isRead ? "" : "; the write's outcome is unknown";
    const failed = (): BlixardError =>
      options.signal?.aborted === true
        ? new CancelledError(`the call was cancelled${outcome}`)
        : new TimeoutError(
            `${isRead ? "read timed out" : "no answer"} within ${timeoutMs} ms${outcome}; retry, or raise timeoutMs`,
          );
    let lastError: BlixardError | undefined;
    for (let attempt = 0; attempt <= this.#retries; attempt++) {
      if (signal.aborted) throw failed();
      const endpoint = this.#preferred ?? this.#endpoints[this.#cursor % this.#endpoints.length];
      if (endpoint === undefined) throw new InvalidArgumentError("no endpoint");
      let response: HttpResponse;
      try {
        response = await exchange(
          endpoint,
          {
            ...request,
            headers: { ...this.#authorization, ...request.headers, ...sessionHeaders?.() },
          },
          {
            signal,
            timeoutMs: timeoutMs - (performance.now() - startedMs),
            httpsAgent: this.#httpsAgent,
          },
        );
      } catch (error) {
        if (signal.aborted) throw failed();
        if (!(error instanceof ExchangeFailure)) throw error;
        lastError = new UnavailableError(`node unreachable: ${error.message}`);
        this.#moveOn();
        if (error.kind === "lost" && safety !== "idempotent") throw lastError;
        await this.#backoff(attempt, signal, failed);
        continue;
      }
      if (response.statusCode >= 200 && response.statusCode < 300) {
        if (response.leaderAddress !== undefined && URL.canParse(response.leaderAddress)) {
          this.#preferred = new URL(response.leaderAddress);
        }
        return response.body;
      }
      const error = errorFromResponse(response.statusCode, response.body);
      lastError = error;
      if (error instanceof NotLeaderError) {
        // Refused before anything was proposed: always safe to send elsewhere.
        const address = error.leaderHint?.address;
        if (
          address !== undefined &&
          URL.canParse(address) &&
          this.#preferred?.href !== new URL(address).href
        ) {
          this.#preferred = new URL(address);
          continue;
        }
        this.#moveOn();
      } else if (!retryable(error, safety)) {
        throw error;
      }
      await this.#backoff(attempt, signal, failed);
    }
    throw lastError ?? failed();
  }

  /** Forgets the believed leader and tries the next endpoint. */
  #moveOn(): void {
    this.#preferred = undefined;
    this.#cursor++;
  }

  async #backoff(attempt: number, signal: AbortSignal, failed: () => BlixardError): Promise<void> {
    const ceilingMs = Math.min(MAX_BACKOFF_MS, this.#backoffMs * 2 ** attempt);
    // Full jitter between half and all of the ceiling: clients that failed together spread out.
    const delayMs = ceilingMs * (0.5 + Math.random() / 2);
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(failed());
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, delayMs);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}

/** True if `error` may be retried under `safety`. */
function retryable(error: BlixardError, safety: RetrySafety): boolean {
  if (!isBlixardError(error)) return false;
  if (error.code === "OVERLOADED") return true;
  if (safety !== "idempotent") return false;
  return error.code === "UNAVAILABLE" || error.code === "TIMEOUT";
}

function consistencyQuery(options: ReadRequestOptions): string {
  return options.consistency === undefined ? "" : `?consistency=${options.consistency}`;
}

/**
 * A timeout as the whole, positive milliseconds that `AbortSignal.timeout` accepts: a deadline
 * computed as `end - performance.now()` is fractional, and Node throws a RangeError on it.
 * @throws InvalidArgumentError if the value is not a positive finite number.
 */
function wholeMilliseconds(timeoutMs: number): number {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new InvalidArgumentError(
      `timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`,
    );
  }
  return Math.min(Math.ceil(timeoutMs), 2 ** 32 - 1);
}
