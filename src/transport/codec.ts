/**
 * Converts between the core's types (src/raft/types.ts) and the generated wire types
 * (src/transport/gen), and frames them for a byte stream: a 4-byte big-endian length, then one
 * encoded `Frame`. Entry and snapshot bytes are referenced, not copied, on both sides: encoding
 * copies them once into the frame, decoding returns views into the received frame.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { InvalidArgumentError } from "../common/errors.js";
import type {
  ConfState,
  Entry,
  EntryType,
  Message,
  MessageType,
  NodeId,
  Snapshot,
} from "../raft/types.js";
import {
  type ConfState as WireConfState,
  ConfStateSchema,
  type Entry as WireEntry,
  EntrySchema,
  type Frame,
  FrameSchema,
  type Message as WireMessage,
  MessageSchema,
  type Snapshot as WireSnapshot,
  SnapshotMetadataSchema,
  SnapshotSchema,
} from "./gen/blixard/raft/v1/raft_pb.js";

/**
 * The newest wire protocol version this node speaks, sent in every hello. Version 3: a link
 * carries raft's small control messages both ways (see `DUPLEX_PROTOCOL_VERSION` in
 * protocol-version.ts). Version 2: the node understands forwarded proposals (entries in the
 * `0xf0` envelope of `node/forwarded-proposal.ts`, and the cluster protocol entries of
 * `node/protocol-gate.ts`). Version 1: the release before that.
 */
export const PROTOCOL_VERSION = 3;
/**
 * The oldest version a receiver still accepts, so a cluster can be upgraded node by node: a
 * release that bumps {@link PROTOCOL_VERSION} keeps reading the previous one (and leaves this at
 * it) until every node runs the new release. A receiver refuses anything outside the range.
 */
export const MIN_PROTOCOL_VERSION = 1;

/** True if a peer's hello version is one this node reads. Throws nothing. */
export function isSupportedProtocolVersion(version: number): boolean {
  return version >= MIN_PROTOCOL_VERSION && version <= PROTOCOL_VERSION;
}

/** Bytes of the length prefix of every frame. */
export const FRAME_HEADER_BYTES = 4;

/** The largest MessageType value the core defines (PreVoteResp). */
const MAX_MESSAGE_TYPE = 18;
/** The largest EntryType value the core defines (ConfChange). */
const MAX_ENTRY_TYPE = 1;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const EMPTY_BYTES = new Uint8Array(0);

/**
 * The wire form of a raft message. A carried snapshot's data is left out unless
 * `includeSnapshotData` (snapshot bytes travel as chunk frames, see peer-connection.ts).
 */
export function toWireMessage(m: Message, includeSnapshotData = false): WireMessage {
  const wire = create(MessageSchema, {
    type: m.type,
    to: BigInt(m.to),
    from: BigInt(m.from),
    term: BigInt(m.term),
    logTerm: BigInt(m.logTerm),
    index: BigInt(m.index),
    entries: m.entries.map(toWireEntry),
    commit: BigInt(m.commit),
    reject: m.reject,
    rejectHint: BigInt(m.rejectHint),
  });
  if (m.snapshot !== undefined) wire.snapshot = toWireSnapshot(m.snapshot, includeSnapshotData);
  if (m.context !== undefined) wire.context = m.context;
  return wire;
}

function toWireEntry(e: Entry): WireEntry {
  return create(EntrySchema, {
    term: BigInt(e.term),
    index: BigInt(e.index),
    type: e.type,
    data: e.data,
  });
}

function toWireSnapshot(s: Snapshot, includeData: boolean): WireSnapshot {
  return create(SnapshotSchema, {
    metadata: create(SnapshotMetadataSchema, {
      index: BigInt(s.metadata.index),
      term: BigInt(s.metadata.term),
      confState: toWireConfState(s.metadata.confState),
    }),
    data: includeData ? s.data : EMPTY_BYTES,
  });
}

function toWireConfState(c: ConfState): WireConfState {
  return create(ConfStateSchema, {
    voters: c.voters.map(BigInt),
    learners: c.learners.map(BigInt),
    votersOutgoing: c.votersOutgoing.map(BigInt),
    learnersNext: c.learnersNext.map(BigInt),
    autoLeave: c.autoLeave,
  });
}

/**
 * The core's form of a wire message. Byte fields are views into the wire message's buffer.
 * @throws InvalidArgumentError if a field is out of the core's range (unknown type, a number
 *   past 2^53, a node id of 0 where one is required): a peer sending it is broken or hostile.
 */
export function fromWireMessage(wire: WireMessage): Message {
  if (wire.type > MAX_MESSAGE_TYPE) {
    throw new InvalidArgumentError(`unknown raft message type ${wire.type}`);
  }
  const m: {
    -readonly [K in keyof Message]: Message[K];
  } = {
    type: wire.type as MessageType,
    to: toNumber(wire.to, "to"),
    from: toNumber(wire.from, "from"),
    term: toNumber(wire.term, "term"),
    logTerm: toNumber(wire.logTerm, "logTerm"),
    index: toNumber(wire.index, "index"),
    entries: wire.entries.map(fromWireEntry),
    commit: toNumber(wire.commit, "commit"),
    reject: wire.reject,
    rejectHint: toNumber(wire.rejectHint, "rejectHint"),
  };
  if (wire.snapshot !== undefined) m.snapshot = fromWireSnapshot(wire.snapshot);
  if (wire.context !== undefined) m.context = wire.context;
  return m;
}

function fromWireEntry(e: WireEntry): Entry {
  if (e.type > MAX_ENTRY_TYPE) throw new InvalidArgumentError(`unknown entry type ${e.type}`);
  return {
    term: toNumber(e.term, "entry.term"),
    index: toNumber(e.index, "entry.index"),
    type: e.type as EntryType,
    data: e.data,
  };
}

function fromWireSnapshot(s: WireSnapshot): Snapshot {
  const metadata = s.metadata;
  const conf = metadata?.confState;
  return {
    metadata: {
      index: toNumber(metadata?.index ?? 0n, "snapshot.index"),
      term: toNumber(metadata?.term ?? 0n, "snapshot.term"),
      confState: {
        voters: (conf?.voters ?? []).map((id) => toNodeId(id)),
        learners: (conf?.learners ?? []).map((id) => toNodeId(id)),
        votersOutgoing: (conf?.votersOutgoing ?? []).map((id) => toNodeId(id)),
        learnersNext: (conf?.learnersNext ?? []).map((id) => toNodeId(id)),
        autoLeave: conf?.autoLeave ?? false,
      },
    },
    data: s.data,
  };
}

function toNumber(value: bigint, field: string): number {
  if (value > MAX_SAFE) throw new InvalidArgumentError(`${field} ${value} exceeds 2^53 - 1`);
  return Number(value);
}

function toNodeId(value: bigint): NodeId {
  const id = toNumber(value, "node id");
  if (id === 0) throw new InvalidArgumentError("node id 0 in a configuration");
  return id;
}

/** Encodes a frame with its length prefix, ready to write to a stream. */
export function encodeFrame(frame: Frame): Uint8Array {
  const body = toBinary(FrameSchema, frame);
  // One allocation for header and body: a single write per frame, and the copy is cheap next to
  // the encoding itself.
  const out = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  new DataView(out.buffer, out.byteOffset, FRAME_HEADER_BYTES).setUint32(0, body.length);
  out.set(body, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Decodes one frame body (without its length prefix). Byte fields are views into `body`.
 * @throws InvalidArgumentError if the bytes are not a valid frame.
 */
export function decodeFrame(body: Uint8Array): Frame {
  try {
    return fromBinary(FrameSchema, body, { readUnknownFields: false });
  } catch (error) {
    throw new InvalidArgumentError(`malformed frame: ${String(error)}`, { cause: error });
  }
}

/** Builds a frame from its case and value (a shorthand over `create`). */
export function frame(kind: Frame["kind"]): Frame {
  return create(FrameSchema, { kind });
}
