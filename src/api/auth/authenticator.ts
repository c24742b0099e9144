/**
 * Authentication and authorization of API requests.
 *
 * Authentication, in this order:
 * 1. `Authorization: Bearer <secret>`: the secret is hashed (SHA-256) and looked up in the
 *    applied ACL state's index by hash: no Raft round. Unknown, revoked or expired → 401.
 * 2. `Blixard-Forwarded-Identity` (only without a bearer token): the identity a follower
 *    authenticated before forwarding to the leader. Trusted only when this connection presents a
 *    member node's certificate; from anyone else the header is refused (403).
 * 3. A verified client certificate: a node certificate (SAN `node-N.<cluster>.blixard`) is node
 *    N; any other certificate's common name maps through the certificate bindings to policies.
 * No credential → 401 UNAUTHENTICATED.
 *
 * Authorization: management tokens and the anonymous identity of `--insecure` may do everything;
 * node N may report for node N, add itself as a learner (`cluster:join:N`) and read the
 * cluster; tokens and client certificates get what their policies' rules grant; everything
 * else is 403 PERMISSION_DENIED naming the missing permission.
 *
 * A resolved token or certificate identity (its policies' rules flattened) is cached until the
 * ACL state's generation changes, i.e. until the next applied ACL command or restore.
 */
import {
  InvalidArgumentError,
  PermissionDeniedError,
  UnauthenticatedError,
} from "../../common/errors.js";
import type { AclQueries } from "../../statemachine/acl/acl-state.js";
import { permissionText, rulesGrant, type Permission } from "../../statemachine/acl/policy.js";
import type { AclRule } from "../../statemachine/acl/types.js";
import { parseNodeIdentityName } from "../../security/names.js";
import { MAX_TOKEN_SECRET_CHARS, hashTokenSecret } from "../../security/secrets.js";
import { describeIdentity, type Identity } from "./identity.js";
import type { PeerCertificate } from "./peer-certificate.js";

/** How the API treats credentials. */
/**
 * The common name of a client certificate that may do everything, as etcd's `root` user: only
 * the holder of the cluster CA's key can issue it, and that holder can already issue any node's
 * certificate. `blixard dev` issues one for its operator.
 */
export const ROOT_CERTIFICATE_NAME = "root";

export type AuthMode = "enforce" | "insecure-open";

/** The ACL state the authenticator reads: queries plus the generation that changes on apply. */
export interface AclSource extends AclQueries {
  readonly generation: number;
}

/** What a request presents. */
export interface Credentials {
  /** The `Authorization` header, as received. */
  readonly authorization?: string | undefined;
  /** The `Blixard-Forwarded-Identity` header, as received. */
  readonly forwardedIdentity?: string | undefined;
  /** The connection's verified client certificate. */
  readonly certificate?: PeerCertificate | undefined;
}

/** Options of an {@link Authenticator}. */
export interface AuthenticatorOptions {
  /** Default `enforce`. Under `insecure-open` every request is the anonymous identity. */
  readonly mode?: AuthMode;
  /** The applied ACL state. Without it no token and no certificate binding is known. */
  readonly acl?: AclSource;
  /** The cluster id, to read node identities from certificates. Without it no certificate is a node. */
  readonly clusterId?: string;
  /** Whether `nodeId` is a member now (only members may forward identities). Default: none is. */
  readonly isMember?: (nodeId: number) => boolean;
  /** Wall-clock ms, for token expiry. Default `Date.now`. */
  readonly now?: () => number;
}

/** The header a follower sets to tell the leader which certificate identity it forwards. */
export const FORWARDED_IDENTITY_HEADER = "blixard-forwarded-identity";

/** The most resolved identities cached at once (cleared whole when full: a bound, not an LRU). */
const MAX_CACHED_IDENTITIES = 4096;

/** A resolved credential: the identity and when it stops being valid. */
interface Resolved {
  readonly identity: Identity;
  readonly expiresAtMs: number | null;
}

const ANONYMOUS: Identity = Object.freeze({ kind: "anonymous" });

/** See the module comment. */
export class Authenticator {
  readonly mode: AuthMode;
  readonly #acl: AclSource | undefined;
  readonly #clusterId: string | undefined;
  readonly #isMember: (nodeId: number) => boolean;
  readonly #now: () => number;
  readonly #cache = new Map<string, Resolved>();
  /** Node identities by certificate (null: it names no node); see {@link #nodeIdentity}. */
  readonly #nodeIdentities = new WeakMap<PeerCertificate, Identity | null>();
  #cacheGeneration = -1;

  /** Throws nothing. */
  constructor(options: AuthenticatorOptions = {}) {
    this.mode = options.mode ?? "enforce";
    this.#acl = options.acl;
    this.#clusterId = options.clusterId;
    this.#isMember = options.isMember ?? (() => false);
    this.#now = options.now ?? Date.now;
  }

  /**
   * The identity behind `credentials` (see the module comment).
   * @throws UnauthenticatedError without a valid credential, PermissionDeniedError for a
   *   forwarded identity from a connection that is not a member node.
   */
  authenticate(credentials: Credentials): Identity {
    if (this.mode === "insecure-open") return ANONYMOUS;
    const connection = this.#connectionIdentity(credentials);
    const forwarded = credentials.forwardedIdentity;
    if (forwarded !== undefined) {
      if (connection?.kind !== "node" || !this.#isMember(connection.nodeId)) {
        throw new PermissionDeniedError(
          `the ${FORWARDED_IDENTITY_HEADER} header is accepted only from a member node's certificate; ${
            connection === undefined
              ? "this connection has none"
              : `not from ${describeIdentity(connection)}`
          }`,
        );
      }
      if (credentials.authorization === undefined) return this.#forwardedIdentity(forwarded);
    }
    if (credentials.authorization !== undefined)
      return this.#tokenIdentity(credentials.authorization);
    if (connection !== undefined) return connection;
    throw new UnauthenticatedError(
      "this request carries no credential; send Authorization: Bearer <token> (blixard --token, BLIXARD_TOKEN) or a client certificate",
    );
  }

  /**
   * Checks that `identity` holds `permission`.
   * @throws PermissionDeniedError naming the permission and the identity.
   */
  authorize(identity: Identity, permission: Permission): void {
    if (this.allows(identity, permission)) return;
    throw new PermissionDeniedError(
      `${describeIdentity(identity)} lacks permission ${permissionText(permission)}; ask an operator for a policy with a rule that grants it`,
    );
  }

  /** Whether `identity` holds `permission`. Throws nothing. */
  allows(identity: Identity, permission: Permission): boolean {
    switch (identity.kind) {
      case "anonymous":
        return true;
      case "token":
        return identity.management || rulesGrant(identity.rules, permission);
      case "certificate":
        return (
          identity.commonName === ROOT_CERTIFICATE_NAME || rulesGrant(identity.rules, permission)
        );
      case "node":
        return (
          (permission.resource === "node" && permission.nodeId === identity.nodeId) ||
          (permission.resource === "cluster" &&
            (permission.access === "read" ||
              (permission.access === "join" && permission.nodeId === identity.nodeId) ||
              // Only a member relays: an agent-only worker's certificate speaks for itself alone.
              (permission.access === "relay" && this.#isMember(identity.nodeId))))
        );
    }
  }

  /**
   * The header value that carries `identity` to the leader when a follower forwards, or
   * undefined when the leader authenticates the request on its own (a bearer token travels
   * unchanged; the anonymous identity needs nothing). Throws nothing.
   */
  forwardedIdentityValue(identity: Identity): string | undefined {
    switch (identity.kind) {
      case "node":
        return `node:${identity.nodeId}`;
      case "certificate":
        return `cert:${encodeURIComponent(identity.commonName)}`;
      default:
        return undefined;
    }
  }

  #connectionIdentity(credentials: Credentials): Identity | undefined {
    const certificate = credentials.certificate;
    if (certificate === undefined) return undefined;
    const node = this.#nodeIdentity(certificate);
    return node ?? this.#certificateIdentity(certificate.commonName);
  }

  /**
   * The node a certificate names, if any. Kept per certificate object: a connection's certificate
   * is read once (`peer-certificate.ts`), and parsing its names again for each of its requests was
   * ~3% of a leader answering a thousand agents' heartbeats. A node identity depends on nothing
   * but the certificate and the cluster id, so it never goes stale.
   */
  #nodeIdentity(certificate: PeerCertificate): Identity | undefined {
    const known = this.#nodeIdentities.get(certificate);
    if (known !== undefined) return known ?? undefined;
    let found: Identity | null = null;
    if (this.#clusterId !== undefined) {
      for (const name of certificate.dnsNames) {
        const nodeId = parseNodeIdentityName(name, this.#clusterId);
        if (nodeId !== undefined) {
          found = Object.freeze({ kind: "node", nodeId });
          break;
        }
      }
    }
    this.#nodeIdentities.set(certificate, found);
    return found ?? undefined;
  }

  /** A client certificate named {@link ROOT_CERTIFICATE_NAME} may do everything (etcd's `root`). */
  #certificateIdentity(commonName: string): Identity {
    if (commonName === "") {
      throw new UnauthenticatedError(
        "the client certificate has no common name; issue one with a name",
      );
    }
    const resolved = this.#cached(`cert:${commonName}`, () => {
      const binding = this.#acl?.certBinding(commonName);
      const policies = binding?.policies ?? [];
      return {
        identity: { kind: "certificate", commonName, policies, rules: this.#rulesOf(policies) },
        expiresAtMs: null,
      };
    });
    return (resolved as Resolved).identity;
  }

  #forwardedIdentity(value: string): Identity {
    if (value.startsWith("node:")) {
      const digits = value.slice("node:".length);
      if (/^[1-9][0-9]{0,15}$/.test(digits)) return { kind: "node", nodeId: Number(digits) };
    } else if (value.startsWith("cert:")) {
      let commonName: string | undefined;
      try {
        commonName = decodeURIComponent(value.slice("cert:".length));
      } catch {
        commonName = undefined;
      }
      if (commonName !== undefined) return this.#certificateIdentity(commonName);
    }
    throw new InvalidArgumentError(
      `malformed ${FORWARDED_IDENTITY_HEADER} header; expected node:<id> or cert:<common name>`,
    );
  }

  #tokenIdentity(header: string): Identity {
    const match = /^Bearer +(\S+) *$/i.exec(header);
    const secret = match?.[1];
    if (secret === undefined || secret.length > MAX_TOKEN_SECRET_CHARS) {
      throw new UnauthenticatedError(
        "the Authorization header must be 'Bearer <token secret>'; get a token with blixard acl token create",
      );
    }
    const hash = hashTokenSecret(secret);
    const { identity, expiresAtMs } = this.#cached(`token:${hash}`, () => {
      const token = this.#acl?.tokenByHash(hash);
      if (token === undefined) return undefined;
      return {
        identity: {
          kind: "token" as const,
          accessorId: token.accessorId,
          name: token.name,
          management: token.management,
          policies: token.policies,
          rules: this.#rulesOf(token.policies),
        },
        expiresAtMs: token.expiresAtMs,
      };
    }) ?? { identity: undefined, expiresAtMs: null };
    if (identity === undefined) {
      throw new UnauthenticatedError(
        "the token is unknown or revoked; use a valid token (blixard acl token create, or the one acl bootstrap printed)",
      );
    }
    if (expiresAtMs !== null && this.#now() >= expiresAtMs) {
      throw new UnauthenticatedError(
        `the token expired at ${new Date(expiresAtMs).toISOString()}; get a new one`,
      );
    }
    return identity;
  }

  #rulesOf(policies: readonly string[]): readonly AclRule[] {
    const rules: AclRule[] = [];
    for (const name of policies) rules.push(...(this.#acl?.policy(name)?.rules ?? []));
    return Object.freeze(rules);
  }

  /** The cached resolution under `key`, computed with `resolve` when absent; undefined results are not cached. */
  #cached(key: string, resolve: () => Resolved | undefined): Resolved | undefined {
    const generation = this.#acl?.generation ?? 0;
    if (generation !== this.#cacheGeneration || this.#cache.size >= MAX_CACHED_IDENTITIES) {
      this.#cache.clear();
      this.#cacheGeneration = generation;
    }
    const hit = this.#cache.get(key);
    if (hit !== undefined) return hit;
    const resolved = resolve();
    if (resolved !== undefined) this.#cache.set(key, resolved);
    return resolved;
  }
}
