/**
 * Bearer-token secrets: how they are made and hashed. The replicated state keeps only the
 * SHA-256 of a secret, computed here by the node that proposes or checks it (never in apply,
 * which stays free of crypto), so a leaked snapshot or WAL holds no usable credential.
 */
import { createHash, randomBytes } from "node:crypto";

/** The prefix of every token secret: makes one recognisable to people and secret scanners. */
export const TOKEN_SECRET_PREFIX = "bxt_";
/** Random bytes in a new secret (256 bits). */
const SECRET_RANDOM_BYTES = 32;
/** The longest secret the API accepts in a header (longer ones are refused before hashing). */
export const MAX_TOKEN_SECRET_CHARS = 256;

/** A new random token secret, `bxt_` + 43 base64url characters. Throws nothing. */
export function newTokenSecret(): string {
  return TOKEN_SECRET_PREFIX + randomBytes(SECRET_RANDOM_BYTES).toString("base64url");
}

/** A new accessor id (the public id of a token). Throws nothing. */
export function newAccessorId(): string {
  return crypto.randomUUID();
}

/** The SHA-256 of `secret` as 64 lower-case hex digits (what the ACL state stores). Throws nothing. */
export function hashTokenSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}
