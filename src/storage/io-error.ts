/**
 * What a failed disk operation means for the log, as one typed error that names the file.
 *
 * - A write (or a file creation) that failed with `ENOSPC`/`EDQUOT` is {@link StorageFullError}:
 *   nothing the log relies on was written, and the same write may be retried once space is freed.
 * - Anything else — above all a failed fsync — is fatal: after a failed fsync Linux may already
 *   have dropped the dirty pages and marked them clean, so a retry can "succeed" without the data
 *   ever reaching the disk (PostgreSQL's "fsyncgate"). The node must stop and recover from what is
 *   really on disk when restarted.
 */
import { isBlixardError, StorageFullError, UnavailableError } from "../common/errors.js";
import { isNoSpaceError } from "./fs.js";

/** The disk operation that failed. Only `create` and `write` may be retried on a full disk. */
export type StorageOperation = "create" | "write" | "truncate" | "fsync" | "rename" | "remove";

/** The typed error for `error`, raised by `operation` on `path`. Never throws. */
export function storageIoError(error: unknown, operation: StorageOperation, path: string): Error {
  if (isBlixardError(error)) return error;
  const code =
    typeof error === "object" && error !== null && "code" in error
      ? String((error as { code: unknown }).code)
      : error instanceof Error
        ? error.message
        : String(error);
  if ((operation === "create" || operation === "write") && isNoSpaceError(error)) {
    return new StorageFullError(
      `the disk is full: ${operation} of ${path} failed (${code}); nothing was written and ` +
        "this node stops accepting writes until space is freed, then resumes by itself",
      { cause: error },
    );
  }
  return new UnavailableError(
    `${operation} of ${path} failed (${code}): the disk cannot be trusted to hold what was ` +
      "written, so this node stops; repair the disk and restart the node (recovery keeps the " +
      "log up to its last intact record and it catches up from its peers)",
    { cause: error },
  );
}
