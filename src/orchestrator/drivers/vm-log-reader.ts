/**
 * Reads a VM's console log (`<logDir>/<name>.log`, written by the drivers) in pieces, for
 * `blixard vm logs [--follow] [--tail N]`: the last lines, or what was written since a byte
 * offset. A follower keeps asking from the `nextOffset` it was given; when the log was rotated
 * meanwhile (the file is now shorter than the offset) it starts again at the new file's start.
 */
import { open } from "node:fs/promises";
import { join } from "node:path";
import { NotFoundError } from "../../common/errors.js";
import { checkVmName } from "./vm-driver.js";

/** The most bytes of log one read returns. */
export const MAX_VM_LOG_READ_BYTES = 64 * 1024;

/** What to read. */
export interface VmLogRequest {
  /** Read from this byte offset on; omitted: the last `tailLines` lines. */
  readonly offset?: number;
  /** Without `offset`: how many of the last lines (default 100). */
  readonly tailLines?: number;
  /** At most this many bytes (default and cap {@link MAX_VM_LOG_READ_BYTES}). */
  readonly maxBytes?: number;
}

/** A piece of a VM's console log. */
export interface VmLogChunk {
  readonly text: string;
  /** The offset to ask from next (the end of what was returned). */
  readonly nextOffset: number;
  /** True when the offset was past the file's end: the log was rotated, `text` starts anew. */
  readonly rotated: boolean;
}

/** The default number of last lines. */
export const DEFAULT_VM_LOG_TAIL_LINES = 100;

/**
 * Reads VM `name`'s log in `logDir`.
 * @throws NotFoundError when this node has no log for the VM; InvalidArgumentError for a name
 *   that cannot name a file.
 */
export async function readVmLog(
  logDir: string,
  name: string,
  request: VmLogRequest,
): Promise<VmLogChunk> {
  checkVmName(name);
  const maxBytes = Math.min(request.maxBytes ?? MAX_VM_LOG_READ_BYTES, MAX_VM_LOG_READ_BYTES);
  let file;
  try {
    file = await open(join(logDir, `${name}.log`), "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new NotFoundError(
        `this node has no console log of VM ${name}; it is kept on the node that ran the VM`,
      );
    }
    throw error;
  }
  try {
    const size = (await file.stat()).size;
    let start: number;
    let rotated = false;
    if (request.offset === undefined) start = Math.max(0, size - maxBytes);
    else if (request.offset > size) {
      start = 0;
      rotated = true;
    } else start = request.offset;
    const length = Math.min(maxBytes, size - start);
    const buffer = new Uint8Array(length);
    const { bytesRead } = await file.read(buffer, 0, length, start);
    let text = new TextDecoder().decode(buffer.subarray(0, bytesRead));
    if (request.offset === undefined) {
      const lines = text.split("\n");
      const wanted = request.tailLines ?? DEFAULT_VM_LOG_TAIL_LINES;
      // The last element is the unfinished line ("" after a final newline).
      text = lines.slice(Math.max(0, lines.length - 1 - wanted)).join("\n");
    }
    return { text, nextOffset: start + bytesRead, rotated };
  } finally {
    await file.close();
  }
}
