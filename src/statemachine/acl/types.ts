/**
 * The ACL namespace's data: policies (named rule lists), tokens (stored by the SHA-256 hash of
 * their secret, never the secret), client-certificate bindings (a certificate's common name to
 * policies) and whether the cluster was bootstrapped. Plain frozen values; `acl-state.ts` keeps
 * them and `policy.ts` evaluates the rules.
 */

/** What a kv rule allows on the keys under its prefix (write implies read). */
export type KvAccess = "read" | "write";

/**
 * One rule of a policy. Each grants one kind of access; a stronger access implies the weaker
 * one of the same resource (kv write ⊇ read, vm/worker/acl manage ⊇ read, cluster operator ⊇
 * read). Task rights are independent of each other.
 */
export type AclRule =
  | { readonly resource: "kv"; readonly access: KvAccess; readonly prefix: string }
  | { readonly resource: "task"; readonly access: "submit" | "read" | "cancel" }
  | { readonly resource: "vm"; readonly access: "manage" | "read" }
  | { readonly resource: "worker"; readonly access: "manage" | "read" }
  | { readonly resource: "cluster"; readonly access: "operator" | "read" }
  | { readonly resource: "acl"; readonly access: "manage" | "read" }
  | { readonly resource: "lease"; readonly access: "write" | "read" }
  | { readonly resource: "node"; readonly access: "report"; readonly nodeId: number };

/** A named list of rules. */
export interface AclPolicy {
  readonly name: string;
  readonly description: string;
  readonly rules: readonly AclRule[];
}

/** A token as the replicated state keeps it: no secret, only its hash. */
export interface AclToken {
  /** The public id of the token (a UUID), used to list, read and revoke it. */
  readonly accessorId: string;
  /** The SHA-256 of the secret, lower-case hex (computed by the proposer, never in apply). */
  readonly secretHash: string;
  readonly name: string;
  readonly description: string;
  /** The policies it holds, by name (a name with no policy grants nothing). */
  readonly policies: readonly string[];
  /** A management token may do everything. */
  readonly management: boolean;
  /** When it was created, by the proposer's clock (ms since the epoch). */
  readonly createdAtMs: number;
  /** When it stops being accepted (ms since the epoch, compared to log time), or null. */
  readonly expiresAtMs: number | null;
}

/** A client-certificate binding: a verified certificate with this common name holds these policies. */
export interface AclCertBinding {
  readonly commonName: string;
  readonly description: string;
  readonly policies: readonly string[];
}

/** The commands of the ACL namespace. */
export type AclCommand =
  /** Creates the first management token; refused with CONFLICT once done. */
  | { readonly type: "bootstrap"; readonly token: AclToken }
  /** Creates or replaces a policy. */
  | { readonly type: "upsertPolicy"; readonly policy: AclPolicy }
  /** Deletes a policy (tokens naming it lose what it granted). NOT_FOUND if absent. */
  | { readonly type: "deletePolicy"; readonly name: string }
  /** Creates a token. CONFLICT if its accessor or hash exists, NOT_FOUND for an unknown policy. */
  | { readonly type: "createToken"; readonly token: AclToken }
  /** Revokes (deletes) a token. NOT_FOUND if absent. */
  | { readonly type: "revokeToken"; readonly accessorId: string }
  /** Creates or replaces a certificate binding. NOT_FOUND for an unknown policy. */
  | { readonly type: "setCertBinding"; readonly binding: AclCertBinding }
  /** Deletes a certificate binding. NOT_FOUND if absent. */
  | { readonly type: "deleteCertBinding"; readonly commonName: string };

/** What an applied ACL command returns. */
export type AclResult =
  | { readonly type: "token"; readonly token: AclToken }
  | { readonly type: "policy"; readonly policy: AclPolicy }
  | { readonly type: "certBinding"; readonly binding: AclCertBinding }
  | { readonly type: "deleted" };
