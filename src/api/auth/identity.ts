/**
 * Who made a request, as the API's authorization sees it, and how each kind is described in
 * error messages and the audit log (never with a secret).
 */
import type { AclRule } from "../../statemachine/acl/types.js";

/** An authenticated caller. */
export type Identity =
  /** A bearer token: its accessor, name and the rules of its policies as they are now. */
  | {
      readonly kind: "token";
      readonly accessorId: string;
      readonly name: string;
      readonly management: boolean;
      readonly policies: readonly string[];
      readonly rules: readonly AclRule[];
    }
  /** A member node, by its certificate (SAN `node-N.<cluster>.blixard`). */
  | { readonly kind: "node"; readonly nodeId: number }
  /** A client certificate, by common name, with the rules of the policies bound to it. */
  | {
      readonly kind: "certificate";
      readonly commonName: string;
      readonly policies: readonly string[];
      readonly rules: readonly AclRule[];
    }
  /** Every caller of a node run with `--insecure`: may do everything. */
  | { readonly kind: "anonymous" };

/** The identity's fields for the audit log and logs: kind and name, no secret. Throws nothing. */
export function identityFields(identity: Identity | undefined): Record<string, unknown> {
  if (identity === undefined) return { kind: "none" };
  switch (identity.kind) {
    case "token":
      return { kind: "token", accessorId: identity.accessorId, name: identity.name };
    case "node":
      return { kind: "node", nodeId: identity.nodeId };
    case "certificate":
      return { kind: "certificate", commonName: identity.commonName };
    case "anonymous":
      return { kind: "anonymous" };
  }
}

/** The identity in a few words, for error messages. Throws nothing. */
export function describeIdentity(identity: Identity): string {
  switch (identity.kind) {
    case "token":
      return `token ${identity.accessorId}${identity.name === "" ? "" : ` (${identity.name})`}`;
    case "node":
      return `node ${identity.nodeId}`;
    case "certificate":
      return `client certificate ${JSON.stringify(identity.commonName)}`;
    case "anonymous":
      return "anonymous (insecure mode)";
  }
}
