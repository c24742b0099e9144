/**
 * Every failure as `{code, message}` with the one HTTP status of its code (`ERROR_CODES`).
 * Blixard's typed errors map directly; the HTTP framework's own errors (bad JSON, body too
 * large, schema violations, wrong media type) map to INVALID_ARGUMENT or TOO_LARGE; anything
 * else is a bug and becomes INTERNAL, without leaking its details.
 */
import { ERROR_CODES, NotLeaderError, isBlixardError, type ErrorCode } from "../common/errors.js";
import type { ErrorBody } from "./schema/common.js";

/** An error response: the status and the body to send. */
export interface ErrorResponse {
  readonly statusCode: number;
  readonly body: ErrorBody;
}

/** The framework error codes that mean "the body is too large". */
const TOO_LARGE_CODES: ReadonlySet<string> = new Set(["FST_ERR_CTP_BODY_TOO_LARGE"]);

/** Builds an error response from `code` and `message`. Throws nothing. */
export function errorResponse(code: ErrorCode, message: string): ErrorResponse {
  return { statusCode: ERROR_CODES[code].httpStatus, body: { code, message } };
}

/**
 * Maps anything thrown while serving a request to its response. `internal` is called for
 * errors that are bugs (to log them). Throws nothing.
 */
export function toErrorResponse(error: unknown, internal: (error: unknown) => void): ErrorResponse {
  if (isBlixardError(error)) {
    const response = errorResponse(error.code, error.message);
    if (error instanceof NotLeaderError && error.leaderHint !== undefined) {
      const { id, address } = error.leaderHint;
      return {
        ...response,
        body: { ...response.body, leaderHint: address === undefined ? { id } : { id, address } },
      };
    }
    return response;
  }
  const framework = frameworkError(error);
  if (framework !== undefined) {
    if (TOO_LARGE_CODES.has(framework.code)) return errorResponse("TOO_LARGE", framework.message);
    if (framework.statusCode >= 400 && framework.statusCode < 500) {
      return errorResponse("INVALID_ARGUMENT", framework.message);
    }
  }
  internal(error);
  return errorResponse("INTERNAL", "internal error; see the node's log");
}

/** A client error the HTTP framework raised (validation, parsing, limits), if `error` is one. */
function frameworkError(
  error: unknown,
): { code: string; statusCode: number; message: string } | undefined {
  if (!(error instanceof Error)) return undefined;
  const { statusCode, code } = error as Error & { statusCode?: unknown; code?: unknown };
  if (typeof statusCode !== "number") return undefined;
  return { code: typeof code === "string" ? code : "", statusCode, message: error.message };
}
