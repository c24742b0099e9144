/**
 * Rebuilds Blixard's typed errors from the API's `{code, message}` bodies, so SDK callers
 * branch on the same classes (`NotLeaderError`, `ConflictError`, …) as code inside a node.
 */
import {
  BlixardError,
  ERROR_CODES,
  InternalError,
  StorageCorruptError,
  UnavailableError,
  errorForCode,
  type ErrorCode,
} from "../common/errors.js";
import type { ErrorBody } from "../api/schema/common.js";

/**
 * A storage corruption reported by a node. The SDK has no file or offset to give (`file` is ""
 * and `offset` -1); the node's message, which names them, is kept as it was sent. An instance of
 * the exported `StorageCorruptError`, so callers branch on one class wherever the error arose.
 */
class RemoteStorageCorruptError extends StorageCorruptError {
  constructor(message: string) {
    super("", -1, message);
    this.message = message;
  }
}

function isErrorBody(body: unknown): body is ErrorBody {
  return (
    typeof body === "object" &&
    body !== null &&
    typeof (body as Record<string, unknown>)["code"] === "string" &&
    typeof (body as Record<string, unknown>)["message"] === "string"
  );
}

/**
 * The typed error of an error response. An unknown code or a body that is not `{code,
 * message}` (a proxy's error page) becomes `UnavailableError` for 5xx and `InternalError`
 * otherwise. Throws nothing.
 */
export function errorFromResponse(statusCode: number, body: unknown): BlixardError {
  if (!isErrorBody(body)) {
    const text = typeof body === "string" ? body.slice(0, 200) : JSON.stringify(body);
    return statusCode >= 500
      ? new UnavailableError(`HTTP ${statusCode} without an error body: ${text}`)
      : new InternalError(`unexpected HTTP ${statusCode} response: ${text}`);
  }
  const { message } = body;
  const code = body.code as ErrorCode;
  if (code === "STORAGE_CORRUPT") return new RemoteStorageCorruptError(message);
  if (!(code in ERROR_CODES)) {
    return new InternalError(`unknown error code ${body.code}: ${message}`);
  }
  const hint = body.leaderHint;
  return errorForCode(
    code,
    message,
    hint === undefined
      ? undefined
      : hint.address === undefined
        ? { id: hint.id }
        : { id: hint.id, address: hint.address },
  );
}
