import { InternalError } from "./errors.js";

/**
 * Asserts an invariant in every build (TigerBeetle style). A failure is a bug found, not an error
 * to handle: it throws {@link InternalError}.
 */
export function invariant(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new InternalError(
      `invariant violated: ${typeof message === "string" ? message : message()}`,
    );
  }
}
