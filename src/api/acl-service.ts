/**
 * The ACL service: bootstrap, policies, tokens and certificate bindings, proposed as ACL
 * commands on the leader and read from the applied ACL state. Token secrets are made and hashed
 * here (the proposer), so the log and the replicated state only ever hold hashes; a secret
 * leaves the node once, in the answer to the request that created it.
 */
import { invariant } from "../common/assert.js";
import { NotFoundError } from "../common/errors.js";
import type { CommandPort } from "../node/command-port.js";
import { ACL_COMMANDS } from "../statemachine/cluster/command-namespaces.js";
import { newAccessorId, newTokenSecret, hashTokenSecret } from "../security/secrets.js";
import type { AclView } from "../statemachine/cluster/cluster-state-machine.js";
import { readAclCommand } from "../statemachine/acl/reader.js";
import type {
  AclCertBinding,
  AclCommand,
  AclPolicy,
  AclResult,
  AclRule,
  AclToken,
} from "../statemachine/acl/types.js";
import type { ReadOptions, WriteOptions } from "./service.js";

/** A token as the API shows it: never the secret, never its hash. */
export type TokenView = Omit<AclToken, "secretHash">;

/** A new token and its secret (shown once). */
export interface CreatedToken {
  readonly token: TokenView;
  readonly secret: string;
}

/** What a new token holds. */
export interface NewToken {
  readonly name?: string;
  readonly description?: string;
  readonly policies?: readonly string[];
  readonly management?: boolean;
  /** Lifetime from now in ms, or undefined for no expiry. */
  readonly ttlMs?: number;
}

/** Options of a {@link RaftAclService}. */
export interface AclServiceOptions {
  /** The node's command port (ACL namespace). */
  readonly commands: CommandPort;
  /** The applied ACL state of this replica. */
  readonly acl: AclView;
  /** The wall clock, ms since the epoch (stamps `createdAtMs`). */
  readonly now: () => number;
}

/** Removes the secret hash from a token. Throws nothing. */
export function tokenView(token: AclToken): TokenView {
  const { secretHash: _hidden, ...view } = token;
  return view;
}

/** The ACL service over a {@link CommandPort}. Every method may reject with the runtime's typed errors. */
export class RaftAclService {
  readonly #commands: CommandPort;
  readonly #acl: AclView;
  readonly #now: () => number;

  /** Throws nothing. */
  constructor(options: AclServiceOptions) {
    this.#commands = options.commands;
    this.#acl = options.acl;
    this.#now = options.now;
  }

  /** Creates the first management token; `ConflictError` once the cluster is bootstrapped. */
  async bootstrap(options: WriteOptions = {}): Promise<CreatedToken> {
    return this.#createToken("bootstrap", { name: "bootstrap", management: true }, options);
  }

  /** Creates a token; `NotFoundError` for an unknown policy. */
  createToken(request: NewToken, options: WriteOptions = {}): Promise<CreatedToken> {
    return this.#createToken("createToken", request, options);
  }

  async #createToken(
    type: "bootstrap" | "createToken",
    request: NewToken,
    options: WriteOptions,
  ): Promise<CreatedToken> {
    const secret = newTokenSecret();
    const nowMs = Math.max(0, Math.floor(this.#now()));
    const token: AclToken = {
      accessorId: newAccessorId(),
      secretHash: hashTokenSecret(secret),
      name: request.name ?? "",
      description: request.description ?? "",
      policies: request.policies ?? [],
      management: request.management ?? false,
      createdAtMs: nowMs,
      expiresAtMs: request.ttlMs === undefined ? null : nowMs + request.ttlMs,
    };
    const result = await this.#propose({ type, token }, options);
    invariant(result.type === "token", () => `${type} returned a ${result.type} result`);
    return { token: tokenView(result.token), secret };
  }

  /** Revokes a token; `NotFoundError` if there is none with this accessor. */
  async revokeToken(accessorId: string, options: WriteOptions = {}): Promise<void> {
    await this.#propose({ type: "revokeToken", accessorId }, options);
  }

  /** Every token, without secrets. */
  listTokens(options: ReadOptions = {}): Promise<readonly TokenView[]> {
    return this.#read(options, () => this.#acl.tokens().map(tokenView));
  }

  /** One token; `NotFoundError` if absent. */
  async getToken(accessorId: string, options: ReadOptions = {}): Promise<TokenView> {
    const token = await this.#read(options, () => this.#acl.token(accessorId));
    if (token === undefined) {
      throw new NotFoundError(
        `token ${accessorId} does not exist; blixard acl token list shows the tokens`,
      );
    }
    return tokenView(token);
  }

  /** Creates or replaces a policy. */
  async upsertPolicy(
    policy: { name: string; description?: string; rules: readonly AclRule[] },
    options: WriteOptions = {},
  ): Promise<AclPolicy> {
    const result = await this.#propose(
      { type: "upsertPolicy", policy: { description: "", ...policy } },
      options,
    );
    invariant(result.type === "policy", () => `upsertPolicy returned a ${result.type} result`);
    return result.policy;
  }

  /** Deletes a policy; `NotFoundError` if absent. */
  async deletePolicy(name: string, options: WriteOptions = {}): Promise<void> {
    await this.#propose({ type: "deletePolicy", name }, options);
  }

  /** Every policy. */
  listPolicies(options: ReadOptions = {}): Promise<readonly AclPolicy[]> {
    return this.#read(options, () => this.#acl.policies());
  }

  /** One policy; `NotFoundError` if absent. */
  async getPolicy(name: string, options: ReadOptions = {}): Promise<AclPolicy> {
    const policy = await this.#read(options, () => this.#acl.policy(name));
    if (policy === undefined) {
      throw new NotFoundError(
        `policy ${name} does not exist; blixard acl policy list shows the policies`,
      );
    }
    return policy;
  }

  /** Creates or replaces a certificate binding; `NotFoundError` for an unknown policy. */
  async setCertBinding(
    binding: { commonName: string; description?: string; policies: readonly string[] },
    options: WriteOptions = {},
  ): Promise<AclCertBinding> {
    const result = await this.#propose(
      { type: "setCertBinding", binding: { description: "", ...binding } },
      options,
    );
    invariant(
      result.type === "certBinding",
      () => `setCertBinding returned a ${result.type} result`,
    );
    return result.binding;
  }

  /** Deletes a certificate binding; `NotFoundError` if absent. */
  async deleteCertBinding(commonName: string, options: WriteOptions = {}): Promise<void> {
    await this.#propose({ type: "deleteCertBinding", commonName }, options);
  }

  /** Every certificate binding. */
  listCertBindings(options: ReadOptions = {}): Promise<readonly AclCertBinding[]> {
    return this.#read(options, () => this.#acl.certBindings());
  }

  #propose(command: AclCommand, options: WriteOptions): Promise<AclResult> {
    return this.#commands.propose(ACL_COMMANDS, readAclCommand(command), options);
  }

  #read<T>(options: ReadOptions, query: () => T): Promise<T> {
    return this.#commands.read(ACL_COMMANDS.name, query, options);
  }
}
