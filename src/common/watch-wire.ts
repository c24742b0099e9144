/**
 * The binary wire format of a kv watch, shared by the node that writes it
 * (`api/events/watch-binary.ts`) and the client that reads it (`client/watch-binary.ts`).
 *
 * Why: a watcher of a busy prefix reads thousands of events a second, and as JSON each one costs
 * its reader a UTF-8 decode of the whole message, a `JSON.parse` and the value's re-encoding to
 * bytes, several times what the node spent to send it. etcd's watch is protobuf over gRPC for
 * the same reason. In this format a value is a byte range of the frame: the reader hands it out
 * as a view, and decodes its text only if asked.
 *
 * A client asks for it with `Accept: application/vnd.blixard.watch` on `GET /v1/kv/watch`; a
 * node that does not know it answers Server-Sent Events, which the client still reads. The body
 * is a sequence of frames, ended by the connection, all numbers little-endian:
 *
 *     u32 length (of what follows), u8 kind, payload
 *
 * - kind {@link WatchFrameKind.Open}, `Progress` and `Error`: the payload is the UTF-8 JSON of
 *   the data of the SSE message of the same name (see `api/events/sse-stream.ts`);
 * - kind `Change`: f64 id (the newest revision it carries: resume from id + 1), f64 index and
 *   f64 revision (of the last entry read), u32 event count, then each event:
 *   u8 op (1 put, 2 delete), u32 key length, the key's UTF-8 bytes, then for a put u32 value
 *   length, the value's bytes, f64 createRevision, f64 modRevision, f64 version; for a delete
 *   f64 modRevision.
 *
 * Changing it: a reader skips a frame kind it does not know (as an SSE reader skips an unknown
 * event), so a new kind of frame may be added freely. An event has no length of its own, so a
 * reader cannot skip an op it does not know: it takes the frame as broken and reconnects. A new
 * op, or any other change to a change frame, therefore needs a new media type, asked for by the
 * clients that read it, while this one keeps being served as it is to the clients that ask for it.
 */

/** The media type of the binary watch. */
export const WATCH_BINARY_MEDIA_TYPE = "application/vnd.blixard.watch";

/** The kinds of frames. */
export const WatchFrameKind = {
  Open: 1,
  Change: 2,
  Progress: 3,
  Error: 4,
} as const;

/** The op of one event of a change frame. */
export const WatchEventOp = {
  Put: 1,
  Delete: 2,
} as const;

/** Bytes of a frame's length field and kind. */
export const WATCH_FRAME_HEADER_BYTES = 5;
/** Bytes of a change frame's fixed fields after the header: id, index, revision, count. */
export const WATCH_CHANGE_FIXED_BYTES = 8 + 8 + 8 + 4;
/**
 * The largest frame a reader accepts, in bytes: a guard against a broken peer. A node writes
 * about 64 KiB of entries per frame, more only for an entry that is bigger by itself (a value is
 * at most a few MiB).
 */
export const WATCH_MAX_FRAME_BYTES = 64 * 1024 * 1024;
