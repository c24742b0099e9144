/**
 * The binary encoding of a {@link ConfChange} inside a conf-change log entry's data. Written by
 * hand so that it is compact, versioned and canonical: every ConfChange has exactly one encoding,
 * and decoding accepts only that encoding, so decode(data) re-encodes to the same bytes.
 *
 * Layout (version 1), where varint is unsigned LEB128 in its shortest form, at most 8 bytes:
 *
 *     u8 version (= 1)
 *     u8 transition (ConfChangeTransition)
 *     varint change count (<= MAX_CONF_CHANGES_PER_ENTRY)
 *     per change: u8 type (ConfChangeType), varint nodeId (1 .. MAX_SAFE_INTEGER)
 *     varint context length, then that many bytes, then nothing
 */

import { InvalidArgumentError } from "../common/errors.js";
import {
  ConfChangeTransition,
  ConfChangeType,
  type ConfChange,
  type ConfChangeSingle,
  type NodeId,
} from "./types.js";

/** The format version this module writes (and the only one it reads). */
export const CONF_CHANGE_FORMAT_VERSION = 1;

/**
 * The most single changes one conf change may carry. Clusters have a handful of members; the
 * limit keeps a corrupt count from allocating without bound.
 */
export const MAX_CONF_CHANGES_PER_ENTRY = 1024;

/** 7 payload bits per byte; 8 bytes hold 56 bits, enough for any safe integer (53 bits). */
const MAX_VARINT_BYTES = 8;

const transitions: ReadonlySet<number> = new Set(Object.values(ConfChangeTransition));
const changeTypes: ReadonlySet<number> = new Set(Object.values(ConfChangeType));

function varintSize(value: number): number {
  let size = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) size++;
  return size;
}

/** Writes value at position; returns the position after it. */
function writeVarint(out: Uint8Array, position: number, value: number): number {
  let rest = value;
  let at = position;
  while (rest >= 0x80) {
    // Arithmetic rather than bit operators, which truncate to 32 bits.
    out[at++] = (rest % 0x80) + 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[at++] = rest;
  return at;
}

function isValidNodeId(nodeId: NodeId): boolean {
  return Number.isSafeInteger(nodeId) && nodeId >= 1;
}

/**
 * Encodes a ConfChange into entry data (a compact, versioned binary format written by hand:
 * version byte, transition, count, then (type, nodeId as varint) per change, then context
 * length + bytes; see the module comment).
 * @throws InvalidArgumentError if the transition or a change type is unknown, a nodeId is not an
 *   integer in [1, MAX_SAFE_INTEGER], or there are more than MAX_CONF_CHANGES_PER_ENTRY changes.
 */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  if (!transitions.has(cc.transition)) {
    throw new InvalidArgumentError(`unknown conf change transition ${String(cc.transition)}`);
  }
  if (cc.changes.length > MAX_CONF_CHANGES_PER_ENTRY) {
    throw new InvalidArgumentError(
      `a conf change carries at most ${MAX_CONF_CHANGES_PER_ENTRY} changes, got ${cc.changes.length}`,
    );
  }
  let sizeBytes = 2 + varintSize(cc.changes.length);
  for (const change of cc.changes) {
    if (!changeTypes.has(change.type)) {
      throw new InvalidArgumentError(`unknown conf change type ${String(change.type)}`);
    }
    if (!isValidNodeId(change.nodeId)) {
      throw new InvalidArgumentError(
        `conf change node id must be an integer in [1, ${Number.MAX_SAFE_INTEGER}], got ${change.nodeId}`,
      );
    }
    sizeBytes += 1 + varintSize(change.nodeId);
  }
  sizeBytes += varintSize(cc.context.byteLength) + cc.context.byteLength;

  const out = new Uint8Array(sizeBytes);
  out[0] = CONF_CHANGE_FORMAT_VERSION;
  out[1] = cc.transition;
  let position = writeVarint(out, 2, cc.changes.length);
  for (const change of cc.changes) {
    out[position++] = change.type;
    position = writeVarint(out, position, change.nodeId);
  }
  position = writeVarint(out, position, cc.context.byteLength);
  out.set(cc.context, position);
  return out;
}

/** Reads `data` front to back; every read checks bounds and throws InvalidArgumentError. */
class Reader {
  position = 0;
  constructor(private readonly data: Uint8Array) {}

  remaining(): number {
    return this.data.byteLength - this.position;
  }

  byte(what: string): number {
    const value = this.data[this.position];
    if (value === undefined) throw malformed(`truncated before the ${what}`);
    this.position++;
    return value;
  }

  varint(what: string): number {
    let value = 0;
    let scale = 1;
    for (let count = 1; count <= MAX_VARINT_BYTES; count++) {
      const byte = this.byte(what);
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        // A zero final byte after others is a longer spelling of a shorter varint.
        if (byte === 0 && count > 1) throw malformed(`non-canonical varint in the ${what}`);
        // Rounding is monotonic and 2^53 is exact, so a too-large value never rounds into range.
        if (value > Number.MAX_SAFE_INTEGER) throw malformed(`the ${what} is too large`);
        return value;
      }
      scale *= 0x80;
    }
    throw malformed(`varint in the ${what} is longer than ${MAX_VARINT_BYTES} bytes`);
  }

  bytes(length: number): Uint8Array {
    const end = this.position + length;
    // Copied so the decoded context does not alias (and pin) the entry's buffer.
    const value = this.data.slice(this.position, end);
    this.position = end;
    return value;
  }
}

function malformed(reason: string): InvalidArgumentError {
  return new InvalidArgumentError(`malformed conf change data: ${reason}`);
}

/**
 * Decodes entry data written by {@link encodeConfChange}. Accepts only canonical encodings, so
 * the result re-encodes to exactly `data`.
 * @throws InvalidArgumentError on any malformed input: unknown version, transition or change type,
 *   a node id of 0 or above MAX_SAFE_INTEGER, a non-canonical or overlong varint, too many
 *   changes, truncation, or trailing bytes. Never throws anything else, never returns a wrong
 *   value silently.
 */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const reader = new Reader(data);
  const version = reader.byte("version");
  if (version !== CONF_CHANGE_FORMAT_VERSION) {
    throw malformed(`unknown format version ${version}`);
  }
  const transition = reader.byte("transition");
  if (!transitions.has(transition)) throw malformed(`unknown transition ${transition}`);
  const count = reader.varint("change count");
  // Each change takes at least two bytes: checking first keeps a corrupt count from allocating.
  if (count > MAX_CONF_CHANGES_PER_ENTRY || count * 2 > reader.remaining()) {
    throw malformed(`change count ${count} exceeds the limit or the data`);
  }
  const changes: ConfChangeSingle[] = [];
  for (let i = 0; i < count; i++) {
    const type = reader.byte("change type");
    if (!changeTypes.has(type)) throw malformed(`unknown change type ${type}`);
    const nodeId = reader.varint("node id");
    if (nodeId === 0) throw malformed("node id 0");
    changes.push({ type: type as ConfChangeType, nodeId });
  }
  const contextLength = reader.varint("context length");
  if (contextLength !== reader.remaining()) {
    throw malformed(
      `context length ${contextLength} does not match the ${reader.remaining()} bytes left`,
    );
  }
  const context = reader.bytes(contextLength);
  return { transition: transition as ConfChangeTransition, changes, context };
}
