/**
 * The envelope of a proposal a follower hands to the leader over the peer transport (etcd's
 * MsgProp forwarding). The leader appends it like any entry; every node strips the envelope
 * before its state machine sees the command, and the node that forwarded it recognises its own
 * entry when it applies it, and answers its caller from its own apply: no second HTTP hop, no
 * second JSON parse, and the leader does no work for the request beyond the append.
 *
 * | bytes   | what                                                           |
 * | ------- | -------------------------------------------------------------- |
 * | 0       | 0xf0 (no state machine command starts with it; see `cluster/namespace.ts`) |
 * | 1 – 8   | the forwarding node's id, big-endian (ids are below 2^53)      |
 * | 9 – 12  | that node's incarnation (random per start): a restarted node never takes an entry forwarded by its previous life for one of its own |
 * | 13 – 16 | the request's sequence number within the incarnation           |
 * | 17 –    | the command, as the state machine reads it                     |
 */
import type { NodeId } from "../raft/types.js";

/** The first byte of a forwarded proposal's entry. */
export const FORWARDED_PROPOSAL_BYTE = 0xf0;

/** Bytes of the envelope in front of the command. */
export const FORWARDED_HEADER_BYTES = 17;

const TWO_TO_32 = 0x1_0000_0000;

/**
 * Wraps `command` in the envelope. One allocation: the entry's own bytes. Throws nothing for a
 * node id below 2^53 and 32-bit `incarnation` and `sequence`.
 */
export function encodeForwardedProposal(
  origin: NodeId,
  incarnation: number,
  sequence: number,
  command: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(FORWARDED_HEADER_BYTES + command.byteLength);
  const view = new DataView(out.buffer);
  out[0] = FORWARDED_PROPOSAL_BYTE;
  view.setUint32(1, Math.floor(origin / TWO_TO_32));
  view.setUint32(5, origin % TWO_TO_32);
  view.setUint32(9, incarnation >>> 0);
  view.setUint32(13, sequence >>> 0);
  out.set(command, FORWARDED_HEADER_BYTES);
  return out;
}

/** True when `data` is in the envelope (the other readers below may then be used). */
export function isForwardedProposal(data: Uint8Array): boolean {
  return data.byteLength >= FORWARDED_HEADER_BYTES && data[0] === FORWARDED_PROPOSAL_BYTE;
}

/** The big-endian u32 at `offset` (no DataView: nothing is allocated per entry). */
function u32(data: Uint8Array, offset: number): number {
  return (
    (((data[offset] as number) << 24) |
      ((data[offset + 1] as number) << 16) |
      ((data[offset + 2] as number) << 8) |
      (data[offset + 3] as number)) >>>
    0
  );
}

/** The id of the node that forwarded the proposal in `data`. */
export function forwardedOrigin(data: Uint8Array): NodeId {
  return u32(data, 1) * TWO_TO_32 + u32(data, 5);
}

/** True when `data` was forwarded by `origin` in `incarnation`. Allocates nothing. */
export function forwardedBy(data: Uint8Array, origin: NodeId, incarnation: number): boolean {
  return forwardedOrigin(data) === origin && u32(data, 9) === incarnation >>> 0;
}

/** The request's sequence number in `data`. */
export function forwardedSequence(data: Uint8Array): number {
  return u32(data, 13);
}

/**
 * The state machine command of a normal entry's `data`, enveloped or not: what anything that
 * replays a log outside the runtime (recovery tools) must apply. A view, not a copy.
 */
export function commandOf(data: Uint8Array): Uint8Array {
  return isForwardedProposal(data) ? forwardedCommand(data) : data;
}

/** The command inside the envelope: a view of `data`, not a copy. */
export function forwardedCommand(data: Uint8Array): Uint8Array {
  return data.subarray(FORWARDED_HEADER_BYTES);
}
