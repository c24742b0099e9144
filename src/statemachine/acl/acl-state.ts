/**
 * The ACL namespace's replicated state: bootstrapped or not, policies, tokens and certificate
 * bindings, with an index of tokens by secret hash kept up to date by every apply (so the API
 * resolves a bearer token with one map lookup, never a Raft round). Deterministic like the kv
 * store: no clock (time comes from the command or log time), no crypto (the proposer hashes).
 *
 * Snapshot: magic "BXAC", u16 format version, then canonical JSON
 * `{"bootstrapped": b, "policies": [...by name], "tokens": [...by accessor],
 *   "bindings": [...by common name]}`; every entity is checked by its strict reader on restore.
 */
import { InvalidArgumentError } from "../../common/index.js";
import { ByteReader, ByteWriter } from "../codec/binary.js";
import { errorResult, okResult, type CommandResult } from "../command-result.js";
import { FieldReader } from "../orchestrator/field-reader.js";
import { asMalformed, decodeJson, encodeJson } from "../orchestrator/json-bytes.js";
import { MAX_ACL_CERT_BINDINGS, MAX_ACL_POLICIES, MAX_ACL_TOKENS } from "./limits.js";
import type { SnapshotPart } from "../snapshot-encoding.js";
import { readAclCertBinding, readAclPolicy, readAclToken } from "./reader.js";
import { AclSnapshotView } from "./snapshot-view.js";
import type { AclCertBinding, AclCommand, AclPolicy, AclResult, AclToken } from "./types.js";

/** Magic of an ACL snapshot: "BXAC". */
const SNAPSHOT_MAGIC = new Uint8Array([0x42, 0x58, 0x41, 0x43]);
/** The ACL snapshot format this code writes and reads. */
export const ACL_SNAPSHOT_FORMAT_VERSION = 1;

/** Read-only queries of the ACL state (what the API's authenticator and routes use). */
export interface AclQueries {
  /** True once `bootstrap` has been applied. */
  readonly bootstrapped: boolean;
  /** The token whose secret hashes to `secretHash`, or undefined. O(1). */
  tokenByHash(secretHash: string): AclToken | undefined;
  /** The token with this accessor id, or undefined. */
  token(accessorId: string): AclToken | undefined;
  /** Every token, by accessor id. */
  tokens(): readonly AclToken[];
  /** The policy named `name`, or undefined. */
  policy(name: string): AclPolicy | undefined;
  /** Every policy, by name. */
  policies(): readonly AclPolicy[];
  /** The binding of certificate common name `commonName`, or undefined. */
  certBinding(commonName: string): AclCertBinding | undefined;
  /** Every binding, by common name. */
  certBindings(): readonly AclCertBinding[];
}

function sortedValues<T>(map: ReadonlyMap<string, T>): readonly T[] {
  return [...map.keys()].sort().map((key) => map.get(key) as T);
}

function notFound<T>(what: string): CommandResult<T> {
  return errorResult("NOT_FOUND", `${what} does not exist`);
}

/** The ACL state; see the module comment. */
export class AclState implements AclQueries {
  #bootstrapped = false;
  readonly #policies = new Map<string, AclPolicy>();
  readonly #tokens = new Map<string, AclToken>();
  readonly #tokensByHash = new Map<string, AclToken>();
  readonly #bindings = new Map<string, AclCertBinding>();

  get bootstrapped(): boolean {
    return this.#bootstrapped;
  }
  tokenByHash(secretHash: string): AclToken | undefined {
    return this.#tokensByHash.get(secretHash);
  }
  token(accessorId: string): AclToken | undefined {
    return this.#tokens.get(accessorId);
  }
  tokens(): readonly AclToken[] {
    return sortedValues(this.#tokens);
  }
  policy(name: string): AclPolicy | undefined {
    return this.#policies.get(name);
  }
  policies(): readonly AclPolicy[] {
    return sortedValues(this.#policies);
  }
  certBinding(commonName: string): AclCertBinding | undefined {
    return this.#bindings.get(commonName);
  }
  certBindings(): readonly AclCertBinding[] {
    return sortedValues(this.#bindings);
  }

  /**
   * Applies a decoded command at `logTimeMs`. Never throws for a decoded command: refusals are
   * error results (CONFLICT, NOT_FOUND, OVERLOADED, INVALID_ARGUMENT) and change nothing.
   */
  apply(command: AclCommand, logTimeMs: number): CommandResult<AclResult> {
    switch (command.type) {
      case "bootstrap":
        if (this.#bootstrapped) {
          return errorResult(
            "CONFLICT",
            "the ACL system is already bootstrapped; use a management token to create more tokens",
          );
        }
        if (!command.token.management) {
          return errorResult("INVALID_ARGUMENT", "the bootstrap token must be a management token");
        }
        return this.#addToken(command.token, logTimeMs, () => {
          this.#bootstrapped = true;
        });
      case "createToken":
        return this.#addToken(command.token, logTimeMs, () => undefined);
      case "revokeToken": {
        const token = this.#tokens.get(command.accessorId);
        if (token === undefined) return notFound(`token ${command.accessorId}`);
        this.#tokens.delete(token.accessorId);
        this.#tokensByHash.delete(token.secretHash);
        return okResult({ type: "deleted" });
      }
      case "upsertPolicy": {
        const { policy } = command;
        if (!this.#policies.has(policy.name) && this.#policies.size >= MAX_ACL_POLICIES) {
          return errorResult("OVERLOADED", `there are ${MAX_ACL_POLICIES} policies, the limit`);
        }
        this.#policies.set(policy.name, policy);
        return okResult({ type: "policy", policy });
      }
      case "deletePolicy":
        if (!this.#policies.delete(command.name)) return notFound(`policy ${command.name}`);
        return okResult({ type: "deleted" });
      case "setCertBinding": {
        const { binding } = command;
        const missing = this.#missingPolicy(binding.policies);
        if (missing !== undefined) return notFound(`policy ${missing}`);
        if (
          !this.#bindings.has(binding.commonName) &&
          this.#bindings.size >= MAX_ACL_CERT_BINDINGS
        ) {
          return errorResult(
            "OVERLOADED",
            `there are ${MAX_ACL_CERT_BINDINGS} certificate bindings, the limit`,
          );
        }
        this.#bindings.set(binding.commonName, binding);
        return okResult({ type: "certBinding", binding });
      }
      case "deleteCertBinding":
        if (!this.#bindings.delete(command.commonName)) {
          return notFound(`certificate binding ${JSON.stringify(command.commonName)}`);
        }
        return okResult({ type: "deleted" });
    }
  }

  #missingPolicy(names: readonly string[]): string | undefined {
    return names.find((name) => !this.#policies.has(name));
  }

  #addToken(token: AclToken, logTimeMs: number, then: () => void): CommandResult<AclResult> {
    if (this.#tokens.has(token.accessorId)) {
      return errorResult("CONFLICT", `token accessor ${token.accessorId} is taken`);
    }
    if (this.#tokensByHash.has(token.secretHash)) {
      return errorResult("CONFLICT", "a token with this secret exists; generate a new secret");
    }
    if (token.management && token.policies.length > 0) {
      return errorResult(
        "INVALID_ARGUMENT",
        "a management token may do everything; give it no policies",
      );
    }
    const missing = this.#missingPolicy(token.policies);
    if (missing !== undefined) return notFound(`policy ${missing}`);
    if (token.expiresAtMs !== null && token.expiresAtMs <= logTimeMs) {
      return errorResult(
        "INVALID_ARGUMENT",
        "the token would expire before it exists; pick a later expiry",
      );
    }
    if (this.#tokens.size >= MAX_ACL_TOKENS) {
      return errorResult(
        "OVERLOADED",
        `there are ${MAX_ACL_TOKENS} tokens, the limit; revoke some`,
      );
    }
    this.#tokens.set(token.accessorId, token);
    this.#tokensByHash.set(token.secretHash, token);
    then();
    return okResult({ type: "token", token });
  }

  /** The state as deterministic bytes (layout in the module comment). Throws nothing. */
  snapshot(): Uint8Array {
    const json = encodeJson({
      bootstrapped: this.#bootstrapped,
      policies: this.policies(),
      tokens: this.tokens(),
      bindings: this.certBindings(),
    });
    return new ByteWriter(json.length + 8)
      .raw(SNAPSHOT_MAGIC)
      .u16(ACL_SNAPSHOT_FORMAT_VERSION)
      .raw(json)
      .finish();
  }

  /**
   * Captures the state now; the part's bytes are {@link snapshot}'s at this call, sorted and
   * encoded a slice at a time while commands keep applying (see `snapshot-view.ts`): O(entities)
   * pointers copied now. Throws nothing.
   */
  captureSnapshot(): SnapshotPart {
    return new AclSnapshotView({
      magicAndVersion: new ByteWriter(SNAPSHOT_MAGIC.length + 2)
        .raw(SNAPSHOT_MAGIC)
        .u16(ACL_SNAPSHOT_FORMAT_VERSION)
        .finish(),
      bootstrapped: this.#bootstrapped,
      policies: [...this.#policies.values()],
      tokens: [...this.#tokens.values()],
      bindings: [...this.#bindings.values()],
    });
  }

  /**
   * Reads a snapshot into a new state (the caller swaps it in). Throws `InvalidArgumentError`
   * for anything malformed: bad magic or version, a bad entity, entities out of order or
   * repeated, a token hash used twice, a bound exceeded.
   */
  static restore(data: Uint8Array): AclState {
    return asMalformed(() => {
      const reader = new ByteReader(data, "ACL snapshot");
      const magic = reader.rawView(SNAPSHOT_MAGIC.length);
      if (!magic.every((byte, i) => byte === SNAPSHOT_MAGIC[i])) {
        throw reader.malformed("not an ACL snapshot (bad magic)");
      }
      const version = reader.u16();
      if (version !== ACL_SNAPSHOT_FORMAT_VERSION) {
        throw reader.malformed(
          `unknown format version ${version}; this node reads version ${ACL_SNAPSHOT_FORMAT_VERSION}`,
        );
      }
      const fields = new FieldReader(decodeJson(reader.rest(), "ACL snapshot"), "ACL snapshot");
      const state = new AclState();
      state.#bootstrapped = fields.boolean("bootstrapped");
      const policies = fields.array("policies", MAX_ACL_POLICIES, (item, path) =>
        readAclPolicy(new FieldReader(item, path)),
      );
      const tokens = fields.array("tokens", MAX_ACL_TOKENS, (item, path) =>
        readAclToken(new FieldReader(item, path)),
      );
      const bindings = fields.array("bindings", MAX_ACL_CERT_BINDINGS, (item, path) =>
        readAclCertBinding(new FieldReader(item, path)),
      );
      fields.end();
      inOrder(
        policies.map((p) => p.name),
        "policies",
      );
      inOrder(
        tokens.map((t) => t.accessorId),
        "tokens",
      );
      inOrder(
        bindings.map((b) => b.commonName),
        "certificate bindings",
      );
      for (const policy of policies) state.#policies.set(policy.name, policy);
      for (const token of tokens) {
        if (state.#tokensByHash.has(token.secretHash)) {
          throw malformed(`token ${token.accessorId} repeats another token's secret hash`);
        }
        state.#tokens.set(token.accessorId, token);
        state.#tokensByHash.set(token.secretHash, token);
      }
      // Tokens and bindings may name deleted policies (those grant nothing), as after apply.
      for (const binding of bindings) state.#bindings.set(binding.commonName, binding);
      return state;
    });
  }
}

function malformed(problem: string): InvalidArgumentError {
  return new InvalidArgumentError(`malformed ACL snapshot: ${problem}`);
}

function inOrder(keys: readonly string[], what: string): void {
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) >= (keys[i] as string)) {
      throw malformed(
        `${what} are not in ascending order without repeats at ${JSON.stringify(keys[i])}`,
      );
    }
  }
}
