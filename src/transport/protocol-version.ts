/**
 * Protocol versions on a peer link. Each side speaks a range of versions; a link speaks the
 * lower of the two newest, when both sides speak it (a link to a node of the previous release
 * speaks the previous version). The hello carries the dialer's range, the hello's answer the
 * version the link speaks, so both ends know which features they may use toward each other.
 *
 * Compatibility with the release before version 2: it reads only `Hello.protocol_version` and
 * accepts it when it equals its own version, and it answers without a version. So a newer node
 * puts the oldest version it speaks in that field (`min`), and takes an answer without a
 * version as "the link speaks my `min`".
 */

/**
 * The first version whose hello announces a range (`maxProtocolVersion`) and whose answer says
 * the version: a node below it speaks the wire of the release before protocol 2.
 */
export const RANGE_PROTOCOL_VERSION = 2;

/**
 * The first version whose links carry raft messages both ways. Until 3 the accepting side of a
 * connection only answered the hello, and a dialler closed a connection on any other frame. On a
 * link of 3 or later the accepting side also sends the small control messages (votes,
 * pre-votes, heartbeats and their answers: `duplex-path.ts`) back on it, beside the copy on its
 * own connection to the dialler: under packet loss one of the pair's two TCP connections is
 * often waiting out a retransmission timeout of a second or more, and an answer on the
 * connection that just delivered the request does not wait behind it (issue #17).
 */
export const DUPLEX_PROTOCOL_VERSION = 3;

/** The versions a node speaks, oldest first. */
export interface ProtocolRange {
  readonly min: number;
  readonly max: number;
}

/** What a node knows of a peer's protocol, from the newest link handshake with it. */
export interface PeerProtocol {
  /** The version the link speaks. */
  readonly protocolVersion: number;
  /** The newest version the peer speaks. */
  readonly maxProtocolVersion: number;
  /** The peer's software release, when it said (releases before protocol 2 do not). */
  readonly softwareVersion?: string;
}

/**
 * The range a hello announces: `protocolVersion` is the oldest, `maxProtocolVersion` the newest
 * (0, absent from a release before version 2: the same as the oldest). Throws nothing.
 */
export function helloRange(hello: {
  readonly protocolVersion: number;
  readonly maxProtocolVersion: number;
}): ProtocolRange {
  return {
    min: hello.protocolVersion,
    max: Math.max(hello.protocolVersion, hello.maxProtocolVersion),
  };
}

/**
 * The version a link between `local` and `peer` speaks: the lower of both newest, if both speak
 * it; undefined when the ranges do not meet (the peer must be refused). Throws nothing.
 */
export function negotiateProtocolVersion(
  local: ProtocolRange,
  peer: ProtocolRange,
): number | undefined {
  const version = Math.min(local.max, peer.max);
  return version >= local.min && version >= peer.min ? version : undefined;
}

/** `1` or `1..2`, for messages. Throws nothing. */
export function formatRange(range: ProtocolRange): string {
  return range.min === range.max ? `${range.min}` : `${range.min}..${range.max}`;
}
