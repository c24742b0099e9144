/**
 * The ACL part of the SDK, reached as `client.acl`: bootstrap, policies, tokens, certificate
 * bindings and whoami. Writes go with the client's session (a retried create makes one token).
 */
import type {
  AclRuleJson,
  CreateTokenBody,
  PolicyJson,
  TokenJson,
  WhoAmIResponse,
} from "../api/schema/index.js";
import type { OrchestratorTransport } from "./orchestrator.js";
import type { RequestOptions } from "./types.js";

export type {
  AclRuleJson as AclRule,
  PolicyJson as Policy,
  TokenJson as Token,
  WhoAmIResponse as WhoAmI,
};

/** A new token and its secret (shown once). */
export interface CreatedToken {
  readonly token: TokenJson;
  readonly secret: string;
}

/** A certificate binding. */
export interface CertBinding {
  readonly commonName: string;
  readonly description: string;
  readonly policies: string[];
}

const enc = encodeURIComponent;

/** The ACL calls of a Blixard client. */
export class AclClient {
  readonly #transport: OrchestratorTransport;

  /** @param transport the owning client's. Throws nothing. */
  constructor(transport: OrchestratorTransport) {
    this.#transport = transport;
  }

  /** Creates the first management token. @throws ConflictError once bootstrapped. */
  async bootstrap(options: RequestOptions = {}): Promise<CreatedToken> {
    return (await this.#transport.write(
      { method: "POST", path: "/v1/acl/bootstrap" },
      options,
    )) as CreatedToken;
  }

  /** Who the client's credential is, and what it may do. */
  async whoami(options: RequestOptions = {}): Promise<WhoAmIResponse> {
    return (await this.#transport.read(
      { method: "GET", path: "/v1/acl/whoami" },
      options,
    )) as WhoAmIResponse;
  }

  /** Creates or replaces policy `name`. */
  async putPolicy(
    name: string,
    policy: { readonly description?: string; readonly rules: readonly AclRuleJson[] },
    options: RequestOptions = {},
  ): Promise<PolicyJson> {
    return (await this.#transport.write(
      { method: "PUT", path: `/v1/acl/policies/${enc(name)}`, body: policy },
      options,
    )) as PolicyJson;
  }

  /** Every policy. */
  async listPolicies(options: RequestOptions = {}): Promise<PolicyJson[]> {
    const body = (await this.#transport.read(
      { method: "GET", path: "/v1/acl/policies" },
      options,
    )) as {
      policies: PolicyJson[];
    };
    return body.policies;
  }

  /** One policy. @throws NotFoundError. */
  async getPolicy(name: string, options: RequestOptions = {}): Promise<PolicyJson> {
    return (await this.#transport.read(
      { method: "GET", path: `/v1/acl/policies/${enc(name)}` },
      options,
    )) as PolicyJson;
  }

  /** Deletes a policy. @throws NotFoundError. */
  async deletePolicy(name: string, options: RequestOptions = {}): Promise<void> {
    await this.#transport.write(
      { method: "DELETE", path: `/v1/acl/policies/${enc(name)}` },
      options,
    );
  }

  /** Creates a token; the answer holds its secret, shown only this once. */
  async createToken(request: CreateTokenBody, options: RequestOptions = {}): Promise<CreatedToken> {
    return (await this.#transport.write(
      { method: "POST", path: "/v1/acl/tokens", body: request },
      options,
    )) as CreatedToken;
  }

  /** Every token, without secrets. */
  async listTokens(options: RequestOptions = {}): Promise<TokenJson[]> {
    const body = (await this.#transport.read(
      { method: "GET", path: "/v1/acl/tokens" },
      options,
    )) as {
      tokens: TokenJson[];
    };
    return body.tokens;
  }

  /** Revokes a token by accessor id. @throws NotFoundError. */
  async revokeToken(accessorId: string, options: RequestOptions = {}): Promise<void> {
    await this.#transport.write(
      { method: "DELETE", path: `/v1/acl/tokens/${enc(accessorId)}` },
      options,
    );
  }

  /** Binds a client certificate's common name to policies. */
  async putCertBinding(
    commonName: string,
    binding: { readonly description?: string; readonly policies: readonly string[] },
    options: RequestOptions = {},
  ): Promise<CertBinding> {
    return (await this.#transport.write(
      { method: "PUT", path: `/v1/acl/cert-bindings/${enc(commonName)}`, body: binding },
      options,
    )) as CertBinding;
  }

  /** Every certificate binding. */
  async listCertBindings(options: RequestOptions = {}): Promise<CertBinding[]> {
    const body = (await this.#transport.read(
      { method: "GET", path: "/v1/acl/cert-bindings" },
      options,
    )) as {
      bindings: CertBinding[];
    };
    return body.bindings;
  }

  /** Removes a certificate binding. @throws NotFoundError. */
  async deleteCertBinding(commonName: string, options: RequestOptions = {}): Promise<void> {
    await this.#transport.write(
      { method: "DELETE", path: `/v1/acl/cert-bindings/${enc(commonName)}` },
      options,
    );
  }
}
