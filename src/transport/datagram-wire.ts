/**
 * The envelope of a peer datagram (datagram-channel.ts): a batch frame of control messages sent
 * over UDP, authenticated with a key both ends of a TLS peer connection derive from it. Private
 * to src/transport.
 *
 * Layout (little-endian):
 *
 * | bytes | field |
 * |---|---|
 * | 0–1 | magic `0xB1 0xD6` |
 * | 2 | version (1) |
 * | 3 | key: 0 none (an `--insecure` cluster), 1 the connection the sender dialled, 2 the one the receiver dialled |
 * | 4–7 | sender's node id (uint32) |
 * | 8–11 | sender's epoch (random per process; restarts a plain-text sequence) |
 * | 12–19 | sequence number (uint64 below 2^53): the receiver takes each once, in rising order |
 * | 20… | the batch frame's body (batch-codec.ts, without its length prefix) |
 * | last 16 | HMAC-SHA256 of everything before, truncated (absent with key 0) |
 *
 * The sequence number is under the tag, so a datagram replayed later is refused, and the second
 * of the two copies a sender writes (see datagram-channel.ts) costs the receiver one comparison.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** Which key authenticates a datagram. */
export const DatagramKey = {
  /** None: a cluster without TLS, where nothing on the network is authenticated. */
  None: 0,
  /** The key of the TLS connection the sender dialled to the receiver. */
  SenderDialled: 1,
  /** The key of the TLS connection the receiver dialled to the sender. */
  ReceiverDialled: 2,
} as const;
export type DatagramKey = (typeof DatagramKey)[keyof typeof DatagramKey];

const MAGIC_0 = 0xb1;
const MAGIC_1 = 0xd6;
const VERSION = 1;
/** Bytes before the frame body. */
export const DATAGRAM_HEADER_BYTES = 20;
/** Bytes of the truncated HMAC at the end of an authenticated datagram. */
export const DATAGRAM_TAG_BYTES = 16;
/** Bytes of a key derived from a TLS connection (HMAC-SHA256's block-sized key is not needed). */
export const DATAGRAM_KEY_BYTES = 32;
/** The TLS exporter label both ends derive a connection's datagram key with (RFC 5705). */
export const DATAGRAM_KEY_LABEL = "EXPORTER-blixard-peer-datagram-v1";
/**
 * The largest datagram written: well under a 1,500-byte Ethernet MTU with IPv6 and UDP headers,
 * so that none is fragmented (a lost fragment loses the datagram). Control messages are small;
 * a batch that does not fit goes on the TCP connections only.
 */
export const MAX_DATAGRAM_BYTES = 1_200;

/** A datagram's header fields, read before its tag is checked (see {@link readDatagramHeader}). */
export interface DatagramHeader {
  readonly key: DatagramKey;
  readonly senderId: number;
  readonly epoch: number;
  readonly sequence: number;
}

/** A datagram that breaks the envelope's format. */
export class MalformedDatagram extends Error {}

/**
 * The datagram that carries `body` (a batch frame's body), tagged with `key` unless
 * `header.key` is {@link DatagramKey.None}; undefined when it would exceed
 * {@link MAX_DATAGRAM_BYTES} or the sender id does not fit the header. Throws nothing.
 */
export function encodeDatagram(
  header: DatagramHeader,
  body: Uint8Array,
  key: Uint8Array | undefined,
): Buffer | undefined {
  const tagged = header.key !== DatagramKey.None;
  const length = DATAGRAM_HEADER_BYTES + body.length + (tagged ? DATAGRAM_TAG_BYTES : 0);
  if (length > MAX_DATAGRAM_BYTES || header.senderId > 0xffff_ffff) return undefined;
  if (tagged && key === undefined) return undefined;
  const out = Buffer.allocUnsafe(length);
  out[0] = MAGIC_0;
  out[1] = MAGIC_1;
  out[2] = VERSION;
  out[3] = header.key;
  out.writeUInt32LE(header.senderId, 4);
  out.writeUInt32LE(header.epoch >>> 0, 8);
  out.writeUInt32LE(header.sequence % 0x1_0000_0000, 12);
  out.writeUInt32LE(Math.floor(header.sequence / 0x1_0000_0000), 16);
  out.set(body, DATAGRAM_HEADER_BYTES);
  if (tagged) {
    const end = DATAGRAM_HEADER_BYTES + body.length;
    tagOf(key!, out.subarray(0, end)).copy(out, end, 0, DATAGRAM_TAG_BYTES);
  }
  return out;
}

/**
 * The header of `datagram`, unauthenticated: the receiver picks the key from it, then calls
 * {@link datagramBody}.
 * @throws MalformedDatagram when it is not a datagram of this format and version.
 */
export function readDatagramHeader(datagram: Buffer): DatagramHeader {
  if (datagram.length < DATAGRAM_HEADER_BYTES + 1) {
    throw new MalformedDatagram(`a datagram of ${datagram.length} bytes`);
  }
  if (datagram[0] !== MAGIC_0 || datagram[1] !== MAGIC_1) {
    throw new MalformedDatagram("not a peer datagram");
  }
  if (datagram[2] !== VERSION) throw new MalformedDatagram(`datagram version ${datagram[2]}`);
  const key = datagram[3]!;
  if (key > DatagramKey.ReceiverDialled) throw new MalformedDatagram(`datagram key ${key}`);
  const high = datagram.readUInt32LE(16);
  if (high >= 0x20_0000) throw new MalformedDatagram("datagram sequence past 2^53");
  return {
    key: key as DatagramKey,
    senderId: datagram.readUInt32LE(4),
    epoch: datagram.readUInt32LE(8),
    sequence: high * 0x1_0000_0000 + datagram.readUInt32LE(12),
  };
}

/**
 * The frame body of `datagram` once its tag checks out under `key` (the whole rest with
 * {@link DatagramKey.None}); undefined when the tag is wrong (forged, corrupted, or made with a
 * key this node has since replaced). Throws nothing beyond {@link MalformedDatagram}.
 */
export function datagramBody(
  datagram: Buffer,
  header: DatagramHeader,
  key: Uint8Array | undefined,
): Buffer | undefined {
  if (header.key === DatagramKey.None) return datagram.subarray(DATAGRAM_HEADER_BYTES);
  if (key === undefined) return undefined;
  const end = datagram.length - DATAGRAM_TAG_BYTES;
  if (end <= DATAGRAM_HEADER_BYTES) throw new MalformedDatagram("a datagram without a body");
  const expected = tagOf(key, datagram.subarray(0, end)).subarray(0, DATAGRAM_TAG_BYTES);
  if (!timingSafeEqual(expected, datagram.subarray(end))) return undefined;
  return datagram.subarray(DATAGRAM_HEADER_BYTES, end);
}

function tagOf(key: Uint8Array, bytes: Uint8Array): Buffer {
  return createHmac("sha256", key).update(bytes).digest();
}
