/**
 * The client-facing HTTP server (Fastify): registers the route table with request validation
 * against its TypeBox schemas, maps every failure to `{code, message}` with the code's HTTP
 * status, bounds body size and request time, forwards leader-only requests from a follower to
 * the leader, and serves metrics, health and the OpenAPI document.
 */
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from "fastify";

import { lazyAjvValidators } from "./lazy-validators.js";
import { lazySerializers } from "./lazy-serializers.js";
import type { Agent as HttpsAgent } from "node:https";
import {
  InvalidArgumentError,
  NotLeaderError,
  NotFoundError,
  UnauthenticatedError,
  UnavailableError,
} from "../common/errors.js";
import type { ClientSession } from "../statemachine/session/envelope.js";
import { MAX_KEY_BYTES } from "../statemachine/kv/limits.js";
import type { RaftAclService } from "./acl-service.js";
import type { AuditSink } from "./audit/audit-log.js";
import {
  Authenticator,
  FORWARDED_IDENTITY_HEADER,
  type AuthenticatorOptions,
} from "./auth/authenticator.js";
import { identityFields, type Identity } from "./auth/identity.js";
import { verifiedPeerCertificate, type PeerCertificate } from "./auth/peer-certificate.js";
import { connectionCancel, requestSignal } from "./connection-cancel.js";
import { forwardRequest, ServedByOtherNodeError } from "./forward.js";
import { hostChecker } from "./host-check.js";
import { aclRoutes } from "./routes/acl-routes.js";
import { coordRoutes } from "./routes/coord-routes.js";
import type { CoordinationService } from "./coord-service.js";
import { permissionText, type Permission } from "../statemachine/acl/policy.js";
import { toErrorResponse } from "./http-errors.js";
import { ApiMetrics } from "./metrics.js";
import { buildOpenApiDocument } from "./openapi.js";
import { RawBody, StreamBody, type RouteSpec } from "./route.js";
import { clusterRoutes } from "./routes/cluster-routes.js";
import { operatorRoutes } from "./routes/operator-routes.js";
import type { OperatorService } from "./operator-service.js";
import { kvRoutes } from "./routes/kv-routes.js";
import { eventRoutes, type EventRouteOptions } from "./routes/event-routes.js";
import { uiRoutes } from "./routes/ui-routes.js";
import { orchestratorRoutes } from "./routes/orchestrator-routes.js";
import type { OrchestratorService } from "./orchestrator-service.js";
import type { AgentProtocol } from "./agents/agent-hub.js";
import { systemRoutes } from "./routes/system-routes.js";
import { HEADERS, SessionHeaders } from "./schema/common.js";
import type { BlixardNodeService, CallOptions } from "./service.js";
import {
  DEFAULT_BODY_LIMIT_BYTES,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  MAX_FORWARD_HOPS,
} from "./server-defaults.js";

/**
 * An idle keep-alive connection is closed after this long. Long enough that an agent's
 * connections stay open between its bursts of reports (each reopened connection is a TLS
 * handshake on both sides; a thousand agents reopening theirs at once when work arrives stalled
 * them past their disconnect grace); `maxConnections` bounds the idle ones.
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** A client must send its request headers within this long. */
const HEADERS_TIMEOUT_MS = 10_000;

/** A log level, or `silent`. */
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/** Options of {@link ApiServer}. */
export interface ApiServerOptions {
  /** The node to serve. */
  readonly service: BlixardNodeService;
  /** The orchestrator (workers, tasks, VMs); its routes are served only when given. */
  readonly orchestrator?: OrchestratorService;
  /** The protocol of agent-only workers (assignment polls, heartbeats); served only when given. */
  readonly agents?: AgentProtocol;
  /** The metrics registry; pass the same one to the service. Default: a new one. */
  readonly metrics?: ApiMetrics;
  /** Largest request body; larger ones get 413 TOO_LARGE. Default {@link DEFAULT_BODY_LIMIT_BYTES}. */
  readonly bodyLimitBytes?: number;
  /** Deadline of a request (504 TIMEOUT past it). Default {@link DEFAULT_REQUEST_TIMEOUT_MS}. */
  readonly requestTimeoutMs?: number;
  /** Structured JSON logs (pino) at this level, with node id, term and role. Default `silent`. */
  readonly logLevel?: LogLevel;
  /** The version written in the OpenAPI document. Default `0.0.0`. */
  readonly version?: string;
  /**
   * Serve HTTPS (TLS 1.2+) with this certificate and key, PEM; client certificates signed by
   * `ca` are requested but optional (see `verifiedClientCertificate`). Plain HTTP when absent.
   */
  readonly https?: { readonly cert: string; readonly key: string; readonly ca: string };
  /** The pool that forwards to an `https://` leader (see `forward.ts`). */
  readonly forwardHttpsAgent?: HttpsAgent;
  /**
   * Authentication and authorization (see `auth/authenticator.ts`). Default: `enforce` with no
   * ACL state, so only the open routes answer. `isMember` defaults to this node's configuration.
   */
  readonly auth?: AuthenticatorOptions & {
    /** The request's verified client certificate. Default: read from the TLS socket. */
    readonly peerCertificate?: (request: FastifyRequest) => PeerCertificate | undefined;
  };
  /** Backup (`/v1/operator/snapshot`); its routes are served only when given. */
  readonly operator?: OperatorService;
  /** The ACL service; its routes are served only when given. */
  readonly acl?: RaftAclService;
  /** Leases, txns and waits; their routes are served only when given. */
  readonly coordination?: CoordinationService;
  /** Where mutating requests are recorded. Default: nowhere. */
  readonly audit?: AuditSink;
  /** Most open connections on the listener; more are closed at once. Default {@link DEFAULT_MAX_CONNECTIONS}. */
  readonly maxConnections?: number;
  /** Extra `Host` names accepted (see `host-check.ts`); `["*"]` accepts any. Default none. */
  readonly allowedHosts?: readonly string[];
  /** The change feed and stream bounds; `/v1/events` and `/v1/kv/watch` are served only when given. */
  readonly events?: Omit<EventRouteOptions, "node">;
}

/** What the server knows of a request beyond Fastify's view (auth and audit). */
interface RequestState {
  identity?: Identity;
  permission?: Permission;
  errorCode?: string;
  forwardedTo?: string;
}

/**
 * The request property that holds its {@link RequestState}: declared on every request with
 * `decorateRequest` (one shape for all), where a WeakMap entry per request was garbage that the
 * collector must also trace as an ephemeron.
 */
const STATE = "blixardState";

/** A request as it carries its state. */
interface StateHolder {
  [STATE]: RequestState | null;
}

/** Whether `request` has the state property (every request of the server's, once decorated). */
function holdsState(request: FastifyRequest): request is FastifyRequest & StateHolder {
  return STATE in request;
}

/** Where to listen. */
export interface ListenOptions {
  /** Default `127.0.0.1`. */
  readonly host?: string;
  /** Default 0 (any free port). */
  readonly port?: number;
}

/** The HTTP server of one node. */
export class ApiServer {
  /** The Fastify instance (for `inject` in tests). */
  readonly app: FastifyInstance;
  /** The node's metrics. */
  readonly metrics: ApiMetrics;
  readonly #service: BlixardNodeService;
  readonly #requestTimeoutMs: number;
  readonly #routes: RouteSpec[];
  /** `METHOD url` of the routes audited only when refused (see {@link RouteSpec.audit}). */
  readonly #auditRefusalsOnly = new Map<string, Set<string>>();
  /** The audit time string of {@link #auditTimeMs}: requests of one millisecond share it. */
  #auditTime = "";
  #auditTimeMs = -1;
  readonly #forwardHttpsAgent: HttpsAgent | undefined;
  readonly #auth: Authenticator;
  readonly #peerCertificate: (request: FastifyRequest) => PeerCertificate | undefined;
  readonly #audit: AuditSink | undefined;
  readonly #maxConnections: number;
  /** Built on its route's first request: most nodes are never asked for it. */
  #openApi: unknown;
  #url: URL | undefined;

  /**
   * Builds the server and its routes; call {@link listen} to serve.
   * @throws InvalidArgumentError on a non-positive limit or timeout.
   */
  constructor(options: ApiServerOptions) {
    this.#service = options.service;
    this.metrics = options.metrics ?? new ApiMetrics(options.service.nodeId);
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const bodyLimitBytes = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
    for (const [name, value] of Object.entries({
      requestTimeoutMs: this.#requestTimeoutMs,
      bodyLimitBytes,
    })) {
      if (!Number.isSafeInteger(value) || value <= 0) {
        throw new InvalidArgumentError(`${name} must be a positive integer, got ${value}`);
      }
    }
    this.#forwardHttpsAgent = options.forwardHttpsAgent;
    this.#maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#auth = new Authenticator({
      isMember: (id) => {
        const config = options.service.status().config;
        return [config.voters, config.learners, config.votersOutgoing].some((ids) =>
          ids.includes(id),
        );
      },
      ...options.auth,
    });
    this.#peerCertificate = options.auth?.peerCertificate ?? verifiedPeerCertificate;
    this.#audit = options.audit;
    // With `https` Fastify's instance is typed for an https server; the routes and hooks are the
    // same, so it is kept under the one type.
    this.app = Fastify(this.#fastifyOptions(options, bodyLimitBytes)) as FastifyInstance;
    this.app.server.maxConnections = this.#maxConnections;
    this.app.server.headersTimeout = HEADERS_TIMEOUT_MS;
    if (options.https !== undefined) {
      // Node reports a TLS handshake that failed or timed out but leaves its socket open: sockets
      // that never spoke piled up to maxConnections and locked every client out.
      this.app.server.on("tlsClientError", (_error: Error, socket: { destroy(): void }) =>
        socket.destroy(),
      );
    }
    this.app.setErrorHandler((error, request, reply) => {
      const response = toErrorResponse(error, (bug) =>
        request.log.error({ err: bug }, "internal error while serving a request"),
      );
      this.#state(request).errorCode = response.body.code;
      return reply.code(response.statusCode).send(response.body);
    });
    this.app.decorateRequest(STATE, null);
    const checkHost = hostChecker(options.allowedHosts ?? []);
    // Hooks take a callback rather than return a promise: a promise and its reaction per hook
    // and request were garbage on every write (a thrown error reaches Fastify all the same).
    this.app.addHook("onRequest", (request, _reply, done) => {
      checkHost(request.headers.host);
      done();
    });
    this.app.setNotFoundHandler((request) => {
      throw new NotFoundError(`no route ${request.method} ${request.url.split("?")[0] ?? ""}`);
    });
    this.app.addHook("onResponse", (request, reply, done) => {
      // Fastify builds `routeOptions` anew on each read: read once for both.
      const route = request.routeOptions.url;
      this.#auditRequest(request, route, reply.statusCode);
      this.metrics.httpRequest(request.method, route ?? "unmatched", reply.statusCode);
      done();
    });

    const service = options.service;
    this.#routes = [
      ...kvRoutes(service),
      ...clusterRoutes(service, options.version ?? "0.0.0"),
      ...(options.orchestrator === undefined
        ? []
        : orchestratorRoutes(options.orchestrator, options.agents)),
      ...(options.acl === undefined ? [] : aclRoutes(options.acl)),
      ...(options.events === undefined
        ? []
        : eventRoutes({
            ...options.events,
            node: () => {
              const status = service.status();
              return { leader: status.leader ?? null, term: status.term };
            },
          })),
      ...uiRoutes(),
      ...(options.coordination === undefined ? [] : coordRoutes(options.coordination)),
      ...(options.operator === undefined
        ? []
        : operatorRoutes(options.operator, options.version ?? "0.0.0")),
      ...systemRoutes(service, {
        metricsText: () => this.metrics.render(service.status()),
        openApi: () =>
          (this.#openApi ??= buildOpenApiDocument(this.#routes, {
            title: "Blixard",
            version: options.version ?? "0.0.0",
          })),
      }),
    ];
    for (const route of this.#routes) {
      if (route.audit === "refusals") {
        const urls = this.#auditRefusalsOnly.get(route.method) ?? new Set();
        this.#auditRefusalsOnly.set(route.method, urls.add(route.url));
      }
      this.#register(route);
    }
  }

  #fastifyOptions(options: ApiServerOptions, bodyLimitBytes: number): FastifyServerOptions {
    const level = options.logLevel ?? "silent";
    const service = options.service;
    const https =
      options.https === undefined
        ? {}
        : {
            https: {
              cert: options.https.cert,
              key: options.https.key,
              ca: options.https.ca,
              minVersion: "TLSv1.2" as const,
              // Asked for, not required: a client may authenticate with a token instead; the
              // socket's `authorized` says whether a certificate was given and verified.
              requestCert: true,
              rejectUnauthorized: false,
              // A socket must finish its handshake as soon as it must send its headers.
              handshakeTimeout: HEADERS_TIMEOUT_MS,
            },
          };
    return {
      ...https,
      bodyLimit: bodyLimitBytes,
      // A key may take 3 characters per byte once URL-encoded.
      routerOptions: { maxParamLength: 3 * MAX_KEY_BYTES + 16 },
      // Receiving a whole request may take at most this long (slow clients hold sockets).
      requestTimeout: this.#requestTimeoutMs * 3,
      // Idle sockets are closed rather than left to pile up (see also maxConnections).
      connectionTimeout: this.#requestTimeoutMs * 6,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      forceCloseConnections: true,
      return503OnClosing: true,
      // Strict validation: wrong types are refused rather than coerced, unknown fields refused
      // rather than silently dropped.
      ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true } },
      // Validators compiled on first use, not at start-up (see lazy-validators.ts).
      // Fastify's serializer compiler loaded only if a route has a response schema (none has;
      // see lazy-serializers.ts).
      schemaController: {
        compilersFactory: {
          buildValidator: lazyAjvValidators(),
          buildSerializer: lazySerializers(),
        },
      },
      logger:
        level === "silent"
          ? false
          : {
              level,
              base: { nodeId: service.nodeId },
              mixin: () => {
                const s = service.status();
                return { term: s.term, role: s.role };
              },
            },
    };
  }

  #register(route: RouteSpec): void {
    this.app.route({
      method: route.method,
      url: route.url,
      schema: {
        ...(route.params === undefined ? {} : { params: route.params }),
        ...(route.querystring === undefined ? {} : { querystring: route.querystring }),
        ...(route.body === undefined ? {} : { body: route.body }),
        headers: SessionHeaders,
      },
      // Credentials are checked before the body is read (401 costs no parsing), the
      // permission once it is parsed and before it is validated (403 needs no valid body).
      onRequest: (request, _reply, done) => {
        this.#authenticate(route, request);
        done();
      },
      preValidation: (request, _reply, done) => {
        this.#authorize(route, request);
        done();
      },
      handler: (request, reply) => this.#serve(route, request, reply),
    });
  }

  #state(request: FastifyRequest): RequestState {
    if (!holdsState(request)) throw new TypeError(`the request has no ${STATE} decoration`);
    return (request[STATE] ??= {});
  }

  /** The request's state if it has any (see {@link #state}). */
  #stateIfAny(request: FastifyRequest): RequestState | undefined {
    return holdsState(request) ? (request[STATE] ?? undefined) : undefined;
  }

  #authenticate(route: RouteSpec, request: FastifyRequest): void {
    const credentials = {
      authorization: headerString(request.headers.authorization),
      forwardedIdentity: headerString(request.headers[FORWARDED_IDENTITY_HEADER]),
      certificate: this.#peerCertificate(request),
    };
    const anyCredential =
      credentials.authorization !== undefined ||
      credentials.forwardedIdentity !== undefined ||
      credentials.certificate !== undefined;
    // An open route needs none, but says who called when it can (whoami-like answers, audit).
    if (route.permission === "open" && !anyCredential && this.#auth.mode === "enforce") return;
    try {
      this.#state(request).identity = this.#auth.authenticate(credentials);
    } catch (error) {
      if (route.permission !== "open") throw error;
    }
  }

  #authorize(route: RouteSpec, request: FastifyRequest): void {
    const required = route.permission;
    if (required === "open" || required === "authenticated") return;
    const state = this.#state(request);
    const identity = state.identity;
    if (identity === undefined) return; // unreachable: #authenticate threw
    const permission =
      typeof required === "function"
        ? required({
            params: (request.params ?? {}) as Record<string, string | undefined>,
            query: (request.query ?? {}) as Record<string, unknown>,
            body: request.body,
          })
        : required;
    state.permission = permission;
    this.#auth.authorize(identity, permission);
  }

  /** One audit line per mutating request to a known route, whatever its outcome. */
  #auditRequest(request: FastifyRequest, route: string | undefined, statusCode: number): void {
    if (this.#audit === undefined || request.method === "GET" || route === undefined) return;
    if (statusCode < 400 && this.#auditRefusalsOnly.get(request.method)?.has(route) === true) {
      return;
    }
    const state = this.#stateIfAny(request) ?? {};
    const hops = Number(headerString(request.headers[HEADERS.forwardedHops]) ?? "0");
    this.#audit.record({
      time: this.#auditTimeNow(),
      node: this.#service.nodeId,
      identity: identityFields(state.identity),
      method: request.method,
      route,
      // Path parameters name the target (key, task id, VM name, member, policy, accessor).
      target: request.params ?? {},
      ...(state.permission === undefined ? {} : { permission: permissionText(state.permission) }),
      status: statusCode,
      ...(state.errorCode === undefined ? {} : { code: state.errorCode }),
      forwardedFrom: hops > 0,
      ...(state.forwardedTo === undefined ? {} : { forwardedTo: state.forwardedTo }),
      remoteAddress: request.ip,
    });
  }

  /** The time of an audit line: one string per millisecond, not a Date and a string per request. */
  #auditTimeNow(): string {
    const ms = Date.now();
    if (ms !== this.#auditTimeMs) {
      this.#auditTimeMs = ms;
      this.#auditTime = new Date(ms).toISOString();
    }
    return this.#auditTime;
  }

  async #serve(route: RouteSpec, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const startedMs = performance.now();
    const headerTimeout = headerString(request.headers[HEADERS.timeoutMs]);
    const timeoutMs = Math.min(
      this.#requestTimeoutMs,
      headerTimeout === undefined ? Infinity : Number(headerTimeout),
    );
    // The client going away (its connection closing while this runs) cancels the work it asked
    // for: one signal per connection, not per request (see connection-cancel.ts).
    const cancel = connectionCancel(request.raw.socket);
    const signal = cancel.begin();
    const call: CallOptions = { signal, timeoutMs };
    try {
      const result = await route.handler({
        params: request.params as Record<string, string>,
        query: (request.query ?? {}) as Record<string, string | undefined>,
        body: request.body,
        headers: request.headers,
        call,
        session: route.sessioned === true ? sessionFromHeaders(request) : undefined,
        identity: this.#stateIfAny(request)?.identity,
        authorize: (permission) => {
          const identity = this.#stateIfAny(request)?.identity;
          if (identity === undefined) throw new UnauthenticatedError("this needs a credential");
          this.#auth.authorize(identity, permission);
        },
      });
      if (route.forwardToLeader === true && request.method !== "GET") {
        // A write a follower handed to the leader over the peer transport and answered itself:
        // name the leader, as a forwarded answer does, so a client can go there next time.
        const leader = this.#service.leaderApiUrl?.();
        if (leader !== undefined) reply.header(HEADERS.leaderAddress, leader.href);
      }
      if (result instanceof RawBody) return reply.type(result.contentType).send(result.text);
      if (result instanceof StreamBody) {
        // The stream writes the response itself for as long as it lasts.
        reply.hijack();
        result.start(reply.raw);
        return reply;
      }
      return reply.code(200).send(result);
    } catch (error) {
      const hops = Number(headerString(request.headers[HEADERS.forwardedHops]) ?? "0");
      if (error instanceof ServedByOtherNodeError) {
        if (hops >= MAX_FORWARD_HOPS) {
          throw new UnavailableError(
            `node ${error.nodeId} serves this request but it came through too many nodes; ask ${error.apiAddress}`,
          );
        }
        return await this.#forward(request, reply, new URL(error.apiAddress), {
          hops,
          timeoutMs: Math.max(1, Math.floor(timeoutMs - (performance.now() - startedMs))),
          signal,
          toLeader: false,
          stream: true,
        });
      }
      const leader = error instanceof NotLeaderError ? error.leaderHint?.address : undefined;
      if (route.forwardToLeader !== true || leader === undefined || hops >= MAX_FORWARD_HOPS) {
        throw error;
      }
      const remainingMs = timeoutMs - (performance.now() - startedMs);
      return await this.#forward(request, reply, new URL(leader), {
        hops,
        timeoutMs: Math.max(1, Math.floor(remainingMs)),
        signal,
        // A read may be a followed log (an event stream).
        stream: request.method === "GET",
      });
    } finally {
      cancel.end();
    }
  }

  async #forward(
    request: FastifyRequest,
    reply: FastifyReply,
    leader: URL,
    options: {
      hops: number;
      timeoutMs: number;
      signal: AbortSignal;
      toLeader?: boolean;
      /** The answer may be an event stream (a followed log), piped through as it comes. */
      stream?: boolean;
    },
  ): Promise<FastifyReply> {
    const { toLeader = true, ...forwardOptions } = options;
    let response;
    const identity = this.#stateIfAny(request)?.identity;
    const forwardedIdentity =
      identity === undefined ? undefined : this.#auth.forwardedIdentityValue(identity);
    this.#state(request).forwardedTo = leader.href;
    // Forwarding combines the signal with its deadline (AbortSignal.any), which would keep a
    // signal on the connection's for the connection's life: it gets one of this request's.
    const cancel = requestSignal(options.signal);
    try {
      response = await forwardRequest(
        leader,
        {
          method: request.method,
          url: request.url,
          body: request.body,
          headers: request.headers,
          ...(forwardedIdentity === undefined ? {} : { forwardedIdentity }),
        },
        {
          ...forwardOptions,
          signal: cancel.signal,
          ...(this.#forwardHttpsAgent === undefined ? {} : { httpsAgent: this.#forwardHttpsAgent }),
        },
      );
    } catch (error) {
      this.metrics.forwarded("error");
      throw error;
    } finally {
      cancel.release();
    }
    this.metrics.forwarded(String(response.statusCode));
    const stream = response.stream;
    if (stream !== undefined) {
      // Piped with backpressure for as long as it lasts; either end closing closes both.
      reply.hijack();
      reply.raw.writeHead(200, {
        "content-type": response.contentType,
        "cache-control": "no-cache, no-transform",
        "x-accel-buffering": "no",
      });
      reply.raw.on("close", () => stream.destroy());
      stream.on("error", () => reply.raw.destroy());
      stream.pipe(reply.raw);
      return reply;
    }
    // Only a leader's address is worth a client's remembering as one.
    if (toLeader) reply.header(HEADERS.leaderAddress, leader.href);
    return reply.code(response.statusCode).type(response.contentType).send(response.text);
  }

  /**
   * Starts listening; resolves with the server's base URL.
   * @throws the listen error (e.g. the port is taken).
   */
  async listen(options: ListenOptions = {}): Promise<URL> {
    const address = await this.app.listen({
      host: options.host ?? "127.0.0.1",
      port: options.port ?? 0,
    });
    this.#url = new URL(address);
    return this.#url;
  }

  /** The base URL once listening. */
  get url(): URL | undefined {
    return this.#url;
  }

  /** The route table (what the OpenAPI document describes). */
  get routes(): readonly RouteSpec[] {
    return this.#routes;
  }

  /** Stops listening and closes open connections. Throws nothing. */
  async close(): Promise<void> {
    await this.app.close();
  }
}

function headerString(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The client session of a write from its headers, or undefined without them.
 * @throws InvalidArgumentError if only some of the headers are given.
 */
function sessionFromHeaders(request: FastifyRequest): ClientSession | undefined {
  const clientId = headerString(request.headers[HEADERS.clientId]);
  const sequence = headerString(request.headers[HEADERS.sequence]);
  const ackedBelow = headerString(request.headers[HEADERS.ackedBelow]);
  if (clientId === undefined && sequence === undefined && ackedBelow === undefined) {
    return undefined;
  }
  if (clientId === undefined || sequence === undefined) {
    throw new InvalidArgumentError(
      `a session needs both ${HEADERS.clientId} and ${HEADERS.sequence}`,
    );
  }
  return {
    clientId,
    sequence: Number(sequence),
    ...(ackedBelow === undefined ? {} : { ackedBelow: Number(ackedBelow) }),
  };
}
