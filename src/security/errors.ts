/** The error a bad or missing certificate, key or CA file raises. */
import { InvalidArgumentError } from "../common/errors.js";

/** Why TLS material was refused. */
export type TlsMaterialProblem =
  /** The file does not exist. */
  | "missing"
  /** The file exists but cannot be read. */
  | "unreadable"
  /** The file is not the PEM it should be. */
  | "malformed"
  /** The private key does not belong to the certificate. */
  | "key-mismatch"
  /** The certificate was not signed by the given CA. */
  | "untrusted"
  /** The certificate is not valid now (expired, or not yet valid). */
  | "expired"
  /** The certificate names another node, cluster or purpose. */
  | "wrong-identity";

/**
 * A certificate, key or CA that cannot be used. A usage problem (an `INVALID_ARGUMENT`): the
 * message names the file and says what to do.
 */
export class TlsMaterialError extends InvalidArgumentError {
  /**
   * @param problem what is wrong.
   * @param path the file concerned, when there is one.
   */
  constructor(
    readonly problem: TlsMaterialProblem,
    readonly path: string | undefined,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
