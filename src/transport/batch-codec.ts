/**
 * A hand-written encoder and decoder for the hot path: `Frame{batch: MessageBatch}` of
 * proto/blixard/raft/v1/raft.proto. Byte-compatible with the generated code (a property test
 * checks both directions), and about an order of magnitude faster than protobuf-es's
 * reflection-based codec, whose per-message cost was the transport's bottleneck (see
 * ARCHITECTURE.md, "Transport"). Rare frames (hello, snapshot chunks) use the generated code.
 *
 * Encoding is two passes: sizes first, then one exact-size buffer with the 4-byte frame header,
 * so entry data is copied exactly once. Decoding returns entry data as views into the frame.
 *
 * What the decoder refuses (numbers past 2^53 - 1, unknown message or entry types, node id 0 in
 * a configuration, a length past its container), the encoder asserts it never writes: peer
 * bytes are validated, our own are asserted.
 */
import { invariant } from "../common/assert.js";
import { InvalidArgumentError } from "../common/errors.js";
import type {
  ConfState,
  Entry,
  EntryType,
  Message,
  MessageType,
  Snapshot,
  SnapshotMetadata,
} from "../raft/types.js";
import { FRAME_HEADER_BYTES } from "./codec.js";

/** A decoded batch. */
export interface DecodedBatch {
  readonly clusterId: string;
  readonly from: number;
  readonly to: number;
  readonly messages: Message[];
}

/** The first byte of a frame body that holds a batch: field 4, length-delimited. */
export const BATCH_FRAME_TAG = (4 << 3) | 2;

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;
const MAX_MESSAGE_TYPE = 18;
const MAX_ENTRY_TYPE = 1;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

// ---------------------------------------------------------------------------------------------
// Sizes

function varintSize(value: number): number {
  let size = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

/** Size of a varint field with its 1-byte tag, or 0 for the default value (proto3 omits it). */
function uintField(value: number): number {
  return value === 0 ? 0 : 1 + varintSize(value);
}

function lengthField(length: number): number {
  return 1 + varintSize(length) + length;
}

function entrySize(e: Entry): number {
  return (
    uintField(e.term) +
    uintField(e.index) +
    uintField(e.type) +
    (e.data.length === 0 ? 0 : lengthField(e.data.length))
  );
}

function packedSize(ids: readonly number[]): number {
  if (ids.length === 0) return 0;
  let size = 0;
  for (const id of ids) size += varintSize(id);
  return lengthField(size);
}

function confStateSize(c: ConfState): number {
  return (
    packedSize(c.voters) +
    packedSize(c.learners) +
    packedSize(c.votersOutgoing) +
    packedSize(c.learnersNext) +
    (c.autoLeave ? 2 : 0)
  );
}

function metadataSize(m: SnapshotMetadata): number {
  return uintField(m.index) + uintField(m.term) + lengthField(confStateSize(m.confState));
}

function snapshotSize(s: Snapshot, includeData: boolean): number {
  const data = includeData ? s.data.length : 0;
  return lengthField(metadataSize(s.metadata)) + (data === 0 ? 0 : lengthField(data));
}

function messageSize(m: Message, includeSnapshotData: boolean): number {
  let size =
    uintField(m.type) +
    uintField(m.to) +
    uintField(m.from) +
    uintField(m.term) +
    uintField(m.logTerm) +
    uintField(m.index) +
    uintField(m.commit) +
    (m.reject ? 2 : 0) +
    uintField(m.rejectHint);
  for (const e of m.entries) size += lengthField(entrySize(e));
  if (m.snapshot !== undefined) size += lengthField(snapshotSize(m.snapshot, includeSnapshotData));
  if (m.context !== undefined) size += lengthField(m.context.length);
  return size;
}

// ---------------------------------------------------------------------------------------------
// Writing

class Writer {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  varint(value: number): void {
    // The decoder refuses anything else; a negative or fractional value would not even end.
    invariant(
      Number.isSafeInteger(value) && value >= 0,
      "a varint must be a safe unsigned integer",
    );
    while (value >= 128) {
      // `& 0x7f` keeps the low 7 bits exactly, even above 2^32 (ToInt32 is taken mod 2^32).
      this.buf[this.pos++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    this.buf[this.pos++] = value;
  }

  uint(field: number, value: number): void {
    if (value === 0) return;
    this.buf[this.pos++] = (field << 3) | VARINT;
    this.varint(value);
  }

  bool(field: number, value: boolean): void {
    if (!value) return;
    this.buf[this.pos++] = (field << 3) | VARINT;
    this.buf[this.pos++] = 1;
  }

  header(field: number, length: number): void {
    this.buf[this.pos++] = (field << 3) | LENGTH_DELIMITED;
    this.varint(length);
  }

  bytes(field: number, data: Uint8Array, always: boolean): void {
    if (data.length === 0 && !always) return;
    this.header(field, data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  packed(field: number, ids: readonly number[]): void {
    if (ids.length === 0) return;
    let size = 0;
    for (const id of ids) {
      invariant(id !== 0, "node id 0 in a configuration");
      size += varintSize(id);
    }
    this.header(field, size);
    for (const id of ids) this.varint(id);
  }
}

function writeMessage(w: Writer, m: Message, includeSnapshotData: boolean): void {
  invariant(m.type <= MAX_MESSAGE_TYPE, "unknown raft message type");
  w.uint(1, m.type);
  w.uint(2, m.to);
  w.uint(3, m.from);
  w.uint(4, m.term);
  w.uint(5, m.logTerm);
  w.uint(6, m.index);
  for (const e of m.entries) {
    invariant(e.type <= MAX_ENTRY_TYPE, "unknown entry type");
    w.header(7, entrySize(e));
    w.uint(1, e.term);
    w.uint(2, e.index);
    w.uint(3, e.type);
    w.bytes(4, e.data, false);
  }
  w.uint(8, m.commit);
  if (m.snapshot !== undefined) {
    const s = m.snapshot;
    w.header(9, snapshotSize(s, includeSnapshotData));
    w.header(1, metadataSize(s.metadata));
    w.uint(1, s.metadata.index);
    w.uint(2, s.metadata.term);
    const c = s.metadata.confState;
    w.header(3, confStateSize(c));
    w.packed(1, c.voters);
    w.packed(2, c.learners);
    w.packed(3, c.votersOutgoing);
    w.packed(4, c.learnersNext);
    w.bool(5, c.autoLeave);
    if (includeSnapshotData) w.bytes(2, s.data, false);
  }
  w.bool(10, m.reject);
  w.uint(11, m.rejectHint);
  if (m.context !== undefined) w.bytes(12, m.context, true);
}

/**
 * Encodes `Frame{batch}` with its length prefix. A carried snapshot's data is left out (it
 * travels as chunk frames) unless `includeSnapshotData`.
 */
export function encodeBatchFrame(
  batch: { clusterId: string; from: number; to: number; messages: readonly Message[] },
  includeSnapshotData = false,
): Uint8Array {
  // Nothing is allocated per frame but the frame itself (and the sizes of a many-message
  // batch): an idle cluster sends tens of heartbeat frames a second, each was six objects more.
  const clusterId = clusterIdBytes(batch.clusterId);
  const { messages } = batch;
  const sizes = messages.length <= scratchSizes.length ? scratchSizes : new Array<number>();
  let batchSize =
    (clusterId.length === 0 ? 0 : lengthField(clusterId.length)) +
    uintField(batch.from) +
    uintField(batch.to);
  for (let i = 0; i < messages.length; i++) {
    const size = messageSize(messages[i]!, includeSnapshotData);
    sizes[i] = size;
    batchSize += lengthField(size);
  }
  const bodySize = lengthField(batchSize);
  const out = new Uint8Array(FRAME_HEADER_BYTES + bodySize);
  // The 4-byte big-endian length (FRAME_HEADER_BYTES).
  out[0] = bodySize >>> 24;
  out[1] = (bodySize >>> 16) & 0xff;
  out[2] = (bodySize >>> 8) & 0xff;
  out[3] = bodySize & 0xff;
  const w = new Writer(out);
  w.pos = FRAME_HEADER_BYTES;
  w.header(4, batchSize);
  w.bytes(1, clusterId, false);
  w.uint(2, batch.from);
  w.uint(3, batch.to);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const size = sizes[i]!;
    w.header(4, size);
    const start = w.pos;
    writeMessage(w, m, includeSnapshotData);
    // The size pass and the write pass must agree, or the decoder reads one message into the next.
    invariant(w.pos === start + size, "a raft message's encoding differs from its computed size");
  }
  invariant(w.pos === out.length, "a batch frame's encoding differs from its computed size");
  return out;
}

/** Sizes of the messages of a batch being encoded, reused for batches up to its length. */
const scratchSizes: number[] = new Array<number>(64).fill(0);

/** The UTF-8 of the last cluster id encoded: a node encodes the same one into every frame. */
let lastClusterId = "";
let lastClusterIdBytes = new Uint8Array(0);

function clusterIdBytes(clusterId: string): Uint8Array {
  if (clusterId !== lastClusterId) {
    lastClusterIdBytes = utf8.encode(clusterId);
    lastClusterId = clusterId;
  }
  return lastClusterIdBytes;
}

// ---------------------------------------------------------------------------------------------
// Reading

class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw malformed("truncated varint");
      const byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 128) {
        if (result > Number.MAX_SAFE_INTEGER) throw malformed("number exceeds 2^53 - 1");
        return result;
      }
      scale *= 128;
    }
    throw malformed("varint longer than 10 bytes");
  }

  /** Where the field {@link sub} last read ends. */
  subEnd = 0;

  /**
   * A length-delimited field: returns where it starts (its end is then {@link subEnd}) and
   * advances past it. No object per field: an idle node decodes tens of frames a second.
   */
  sub(): number {
    const length = this.varint();
    const start = this.pos;
    const end = start + length;
    if (end > this.end) throw malformed("length past the end of its container");
    this.pos = end;
    this.subEnd = end;
    return start;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case VARINT:
        this.varint();
        return;
      case FIXED64:
        this.pos += 8;
        break;
      case LENGTH_DELIMITED:
        this.sub();
        return;
      case FIXED32:
        this.pos += 4;
        break;
      default:
        throw malformed(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw malformed("truncated field");
  }
}

/** The last cluster id decoded, and its bytes: every frame from a peer carries the same one. */
let lastDecodedClusterId = "";
let lastDecodedClusterIdBytes = new Uint8Array(0);

function decodeClusterId(bytes: Uint8Array): string {
  const last = lastDecodedClusterIdBytes;
  let same = bytes.length === last.length;
  for (let i = 0; same && i < bytes.length; i++) same = bytes[i] === last[i];
  if (same) return lastDecodedClusterId;
  let clusterId: string;
  try {
    clusterId = utf8Decoder.decode(bytes);
  } catch {
    throw malformed("cluster id is not UTF-8");
  }
  lastDecodedClusterIdBytes = bytes.slice();
  lastDecodedClusterId = clusterId;
  return clusterId;
}

function malformed(reason: string): InvalidArgumentError {
  return new InvalidArgumentError(`malformed batch frame: ${reason}`);
}

/** The data of an entry without any (the leader's empty entry of a new term), shared. */
const NO_DATA = new Uint8Array(0);

function readEntry(buf: Uint8Array, start: number, end: number): Entry {
  const r = new Reader(buf, start, end);
  let term = 0;
  let index = 0;
  let type = 0;
  let data: Uint8Array = NO_DATA;
  while (!r.done) {
    const tag = r.varint();
    switch (tag) {
      case (1 << 3) | VARINT:
        term = r.varint();
        break;
      case (2 << 3) | VARINT:
        index = r.varint();
        break;
      case (3 << 3) | VARINT:
        type = r.varint();
        if (type > MAX_ENTRY_TYPE) throw malformed(`unknown entry type ${type}`);
        break;
      case (4 << 3) | LENGTH_DELIMITED: {
        const sStart = r.sub();
        const sEnd = r.subEnd;
        // A copy of its own: the log keeps an entry long after the frame is gone, and the state
        // machine keeps views into it (a kv value) instead of copies of its own, which it can
        // only do for data that keeps nothing else alive (a view of the frame would keep the
        // whole socket read that carried it, for as long as the value lives).
        // (`buf` may be a Buffer, whose slice() is a view.)
        if (sEnd > sStart) {
          data = new Uint8Array(sEnd - sStart);
          data.set(buf.subarray(sStart, sEnd));
        }
        break;
      }
      default:
        r.skip(tag & 7);
    }
  }
  return { term, index, type: type as EntryType, data };
}

function readIds(r: Reader, wireType: number, into: number[]): void {
  if (wireType === VARINT) {
    into.push(r.varint());
    return;
  }
  const sStart = r.sub();
  const sEnd = r.subEnd;
  const packed = new Reader(r.buf, sStart, sEnd);
  while (!packed.done) into.push(packed.varint());
}

function readConfState(buf: Uint8Array, start: number, end: number): ConfState {
  const r = new Reader(buf, start, end);
  const lists: [number[], number[], number[], number[]] = [[], [], [], []];
  let autoLeave = false;
  while (!r.done) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field >= 1 && field <= 4 && (wireType === VARINT || wireType === LENGTH_DELIMITED)) {
      readIds(r, wireType, lists[field - 1]!);
    } else if (tag === ((5 << 3) | VARINT)) {
      autoLeave = r.varint() !== 0;
    } else {
      r.skip(wireType);
    }
  }
  for (const list of lists) {
    if (list.includes(0)) throw malformed("node id 0 in a configuration");
  }
  return {
    voters: lists[0],
    learners: lists[1],
    votersOutgoing: lists[2],
    learnersNext: lists[3],
    autoLeave,
  };
}

const EMPTY_CONF: ConfState = {
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

function readMetadata(buf: Uint8Array, start: number, end: number): SnapshotMetadata {
  const r = new Reader(buf, start, end);
  let index = 0;
  let term = 0;
  let confState = EMPTY_CONF;
  while (!r.done) {
    const tag = r.varint();
    if (tag === ((1 << 3) | VARINT)) index = r.varint();
    else if (tag === ((2 << 3) | VARINT)) term = r.varint();
    else if (tag === ((3 << 3) | LENGTH_DELIMITED)) {
      const sStart = r.sub();
      const sEnd = r.subEnd;
      confState = readConfState(buf, sStart, sEnd);
    } else r.skip(tag & 7);
  }
  return { index, term, confState: { ...confState } };
}

function readSnapshot(buf: Uint8Array, start: number, end: number): Snapshot {
  const r = new Reader(buf, start, end);
  let metadata: SnapshotMetadata = { index: 0, term: 0, confState: { ...EMPTY_CONF } };
  let data: Uint8Array = buf.subarray(start, start);
  while (!r.done) {
    const tag = r.varint();
    if (tag === ((1 << 3) | LENGTH_DELIMITED)) {
      const sStart = r.sub();
      const sEnd = r.subEnd;
      metadata = readMetadata(buf, sStart, sEnd);
    } else if (tag === ((2 << 3) | LENGTH_DELIMITED)) {
      const sStart = r.sub();
      const sEnd = r.subEnd;
      data = buf.subarray(sStart, sEnd);
    } else r.skip(tag & 7);
  }
  return { metadata, data };
}

function readMessage(buf: Uint8Array, start: number, end: number): Message {
  const r = new Reader(buf, start, end);
  const entries: Entry[] = [];
  const m: { -readonly [K in keyof Message]: Message[K] } = {
    type: 0,
    to: 0,
    from: 0,
    term: 0,
    logTerm: 0,
    index: 0,
    entries,
    commit: 0,
    reject: false,
    rejectHint: 0,
  };
  while (!r.done) {
    const tag = r.varint();
    switch (tag) {
      case (1 << 3) | VARINT: {
        const type = r.varint();
        if (type > MAX_MESSAGE_TYPE) throw malformed(`unknown raft message type ${type}`);
        m.type = type as MessageType;
        break;
      }
      case (2 << 3) | VARINT:
        m.to = r.varint();
        break;
      case (3 << 3) | VARINT:
        m.from = r.varint();
        break;
      case (4 << 3) | VARINT:
        m.term = r.varint();
        break;
      case (5 << 3) | VARINT:
        m.logTerm = r.varint();
        break;
      case (6 << 3) | VARINT:
        m.index = r.varint();
        break;
      case (7 << 3) | LENGTH_DELIMITED: {
        const sStart = r.sub();
        const sEnd = r.subEnd;
        entries.push(readEntry(buf, sStart, sEnd));
        break;
      }
      case (8 << 3) | VARINT:
        m.commit = r.varint();
        break;
      case (9 << 3) | LENGTH_DELIMITED: {
        const sStart = r.sub();
        const sEnd = r.subEnd;
        m.snapshot = readSnapshot(buf, sStart, sEnd);
        break;
      }
      case (10 << 3) | VARINT:
        m.reject = r.varint() !== 0;
        break;
      case (11 << 3) | VARINT:
        m.rejectHint = r.varint();
        break;
      case (12 << 3) | LENGTH_DELIMITED: {
        const sStart = r.sub();
        const sEnd = r.subEnd;
        m.context = buf.subarray(sStart, sEnd);
        break;
      }
      default:
        r.skip(tag & 7);
    }
  }
  return m;
}

/**
 * Decodes a frame body that starts with {@link BATCH_FRAME_TAG}. Byte fields are views into
 * `body`.
 * @throws InvalidArgumentError on malformed bytes or values out of the core's range.
 */
export function decodeBatchFrame(body: Uint8Array): DecodedBatch {
  const frame = new Reader(body, 0, body.length);
  let batch: DecodedBatch | undefined;
  while (!frame.done) {
    const tag = frame.varint();
    if (tag !== BATCH_FRAME_TAG) {
      frame.skip(tag & 7);
      continue;
    }
    const sStart = frame.sub();
    const sEnd = frame.subEnd;
    const r = new Reader(body, sStart, sEnd);
    let clusterId = "";
    let from = 0;
    let to = 0;
    const messages: Message[] = [];
    while (!r.done) {
      const t = r.varint();
      if (t === ((1 << 3) | LENGTH_DELIMITED)) {
        const fStart = r.sub();
        const fEnd = r.subEnd;
        clusterId = decodeClusterId(body.subarray(fStart, fEnd));
      } else if (t === ((2 << 3) | VARINT)) from = r.varint();
      else if (t === ((3 << 3) | VARINT)) to = r.varint();
      else if (t === ((4 << 3) | LENGTH_DELIMITED)) {
        const fStart = r.sub();
        const fEnd = r.subEnd;
        messages.push(readMessage(body, fStart, fEnd));
      } else r.skip(t & 7);
    }
    batch = { clusterId, from, to, messages };
  }
  if (batch === undefined) throw malformed("no batch in the frame");
  return batch;
}
