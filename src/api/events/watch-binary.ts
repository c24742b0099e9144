/**
 * Writes the binary kv watch format (`common/watch-wire.ts`): one event's bytes (built once per
 * event and kept, like its JSON), change frames made of them, and the JSON frames (open,
 * progress, error).
 */
import {
  WATCH_CHANGE_FIXED_BYTES,
  WATCH_FRAME_HEADER_BYTES,
  WatchEventOp,
  WatchFrameKind,
} from "../../common/watch-wire.js";
import type { EventSource } from "./feed-event.js";

/** The bytes of a kv event in a change frame; undefined for other topics. Throws nothing. */
export function kvEventBytes(source: EventSource): Buffer | undefined {
  if (source.kind === "kv.put") {
    const { key, value, createRevision, modRevision, version } = source.change;
    const keyBytes = Buffer.byteLength(key, "utf8");
    const out = Buffer.allocUnsafe(1 + 4 + keyBytes + 4 + value.length + 24);
    let at = out.writeUInt8(WatchEventOp.Put, 0);
    at = out.writeUInt32LE(keyBytes, at);
    at += out.write(key, at, "utf8");
    at = out.writeUInt32LE(value.length, at);
    out.set(value, at);
    at += value.length;
    at = out.writeDoubleLE(createRevision, at);
    at = out.writeDoubleLE(modRevision, at);
    out.writeDoubleLE(version, at);
    return out;
  }
  if (source.kind === "kv.delete") {
    const keyBytes = Buffer.byteLength(source.key, "utf8");
    const out = Buffer.allocUnsafe(1 + 4 + keyBytes + 8);
    let at = out.writeUInt8(WatchEventOp.Delete, 0);
    at = out.writeUInt32LE(keyBytes, at);
    at += out.write(source.key, at, "utf8");
    out.writeDoubleLE(source.revision, at);
    return out;
  }
  return undefined;
}

/**
 * A change frame: `events` (each from {@link kvEventBytes}), `eventBytes` their total length.
 * `id` is the newest revision among them; `index` and `revision` those of the last entry read.
 */
export function changeFrame(
  id: number,
  index: number,
  revision: number,
  events: readonly Buffer[],
  eventBytes: number,
): Buffer {
  const length = 1 + WATCH_CHANGE_FIXED_BYTES + eventBytes;
  const out = Buffer.allocUnsafe(4 + length);
  let at = out.writeUInt32LE(length, 0);
  at = out.writeUInt8(WatchFrameKind.Change, at);
  at = out.writeDoubleLE(id, at);
  at = out.writeDoubleLE(index, at);
  at = out.writeDoubleLE(revision, at);
  at = out.writeUInt32LE(events.length, at);
  for (const event of events) {
    out.set(event, at);
    at += event.length;
  }
  return out;
}

/** A frame whose payload is `data` as JSON (open, progress, error). Throws nothing. */
export function jsonFrame(
  kind: (typeof WatchFrameKind)["Open" | "Progress" | "Error"],
  data: unknown,
): Buffer {
  const json = Buffer.from(JSON.stringify(data), "utf8");
  const out = Buffer.allocUnsafe(WATCH_FRAME_HEADER_BYTES + json.length);
  out.writeUInt32LE(1 + json.length, 0);
  out.writeUInt8(kind, 4);
  out.set(json, WATCH_FRAME_HEADER_BYTES);
  return out;
}
