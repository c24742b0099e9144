/**
 * The command envelope: what every sessioned command carries around its payload.
 *
 * Binary layout (big-endian; see `codec/binary.ts`):
 *
 * | field          | encoding                                                        |
 * | -------------- | --------------------------------------------------------------- |
 * | format version | u8, {@link ENVELOPE_FORMAT_VERSION}                             |
 * | flags          | u8; bit 0 = a client session follows; other bits must be 0      |
 * | proposedAtMs   | u53 (8 bytes)                                                   |
 * | clientId       | u32 length + UTF-8 (only with a session)                        |
 * | sequence       | u53 (only with a session)                                       |
 * | ackedBelow     | u53 (only with a session)                                       |
 * | payload        | every remaining byte: the wrapped state machine's command       |
 */
import { InvalidArgumentError, TooLargeError } from "../../common/index.js";
import { ByteReader, ByteWriter } from "../codec/binary.js";
import { utf8ByteLength } from "../codec/utf8.js";

/** The envelope format this code writes and reads. */
export const ENVELOPE_FORMAT_VERSION = 1;

/** The longest client id, in UTF-8 bytes (a UUID is 36). */
export const MAX_CLIENT_ID_BYTES = 128;

const FLAG_SESSION = 0b0000_0001;
const HEADER_BYTES = 1 + 1 + 8;

/**
 * A writer's place in its client session (Raft thesis §6.3). See "Retry rules for client
 * writers" in `sessioned-state-machine.ts` for what the fields mean to the state machine.
 */
export interface ClientSession {
  /** The session's id, chosen by the client: unique, never reused (e.g. a random UUID); 1..128 UTF-8 bytes. */
  readonly clientId: string;
  /** This command's sequence number in the session: 1 for the first command, then increasing. */
  readonly sequence: number;
  /**
   * The lowest sequence the client has not yet seen a reply for; results below it may be
   * discarded. Defaults to `sequence` (the client has no other command outstanding). Must be in
   * `1..sequence`.
   */
  readonly ackedBelow?: number;
}

/** A command envelope as a proposer builds it. */
export interface CommandEnvelope {
  /**
   * The proposer's clock when it proposed the command, in ms since the Unix epoch (a safe
   * integer ≥ 0). The state machine's log time is the largest value applied so far.
   */
  readonly proposedAtMs: number;
  /** The client session, for commands that must apply exactly once. Omit for at-least-once commands. */
  readonly session?: ClientSession;
  /** The wrapped state machine's command bytes. */
  readonly payload: Uint8Array;
}

/** A decoded envelope: the session, when present, has `ackedBelow` filled in. */
export interface DecodedCommandEnvelope extends CommandEnvelope {
  readonly session?: Required<ClientSession>;
}

function isPositiveSafeInteger(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 1;
}

/**
 * Checks an envelope's header fields. Throws `InvalidArgumentError` for a bad time, sequence,
 * `ackedBelow` or client id, `TooLargeError` for a client id over {@link MAX_CLIENT_ID_BYTES}.
 */
export function validateEnvelopeHeader(envelope: Omit<CommandEnvelope, "payload">): void {
  if (!Number.isSafeInteger(envelope.proposedAtMs) || envelope.proposedAtMs < 0) {
    throw new InvalidArgumentError(
      `proposedAtMs must be a safe integer ≥ 0, got ${envelope.proposedAtMs}`,
    );
  }
  const session = envelope.session;
  if (session === undefined) return;
  const clientIdBytes = utf8ByteLength(session.clientId);
  if (clientIdBytes === undefined || clientIdBytes === 0) {
    throw new InvalidArgumentError("clientId must be a non-empty, well-formed string");
  }
  if (clientIdBytes > MAX_CLIENT_ID_BYTES) {
    throw new TooLargeError(
      `clientId is ${clientIdBytes} bytes; the limit is ${MAX_CLIENT_ID_BYTES} bytes`,
    );
  }
  if (!isPositiveSafeInteger(session.sequence)) {
    throw new InvalidArgumentError(`sequence must be a safe integer ≥ 1, got ${session.sequence}`);
  }
  const ackedBelow = session.ackedBelow ?? session.sequence;
  if (!isPositiveSafeInteger(ackedBelow) || ackedBelow > session.sequence) {
    throw new InvalidArgumentError(
      `ackedBelow must be a safe integer in 1..sequence (${session.sequence}), got ${ackedBelow}`,
    );
  }
}

/**
 * Encodes an envelope. Throws `InvalidArgumentError` or `TooLargeError` for invalid header fields
 * (see {@link validateEnvelopeHeader}); the payload is not inspected.
 */
export function encodeCommandEnvelope(envelope: CommandEnvelope): Uint8Array {
  return envelopeWriter(envelope, envelope.payload.length).raw(envelope.payload).finish();
}

/**
 * A writer holding an envelope's header, with room for `payloadBytes` more: the caller writes
 * the payload straight into it (no array of the payload's own, then copied), and `finish()`
 * gives the envelope's bytes, without a copy when `payloadBytes` was exact. Throws as
 * {@link validateEnvelopeHeader}.
 */
export function envelopeWriter(
  header: Omit<CommandEnvelope, "payload">,
  payloadBytes: number,
): ByteWriter {
  validateEnvelopeHeader(header);
  const session = header.session;
  // The exact size, so that the writer's buffer is the entry (no copy at finish): a proposal's
  // bytes are then one allocation, which the kv store can share instead of copying.
  const sessionBytes =
    session === undefined ? 0 : 4 + (utf8ByteLength(session.clientId) ?? 0) + 8 + 8;
  const writer = new ByteWriter(HEADER_BYTES + sessionBytes + payloadBytes)
    .u8(ENVELOPE_FORMAT_VERSION)
    .u8(session === undefined ? 0 : FLAG_SESSION)
    .u53(header.proposedAtMs);
  if (session !== undefined) {
    writer
      .string(session.clientId)
      .u53(session.sequence)
      .u53(session.ackedBelow ?? session.sequence);
  }
  return writer;
}

/**
 * Decodes an envelope. The payload is a view into `bytes` (not a copy). Throws
 * `InvalidArgumentError` on malformed bytes or an unknown version, `TooLargeError` for a client
 * id over the limit.
 */
export function decodeCommandEnvelope(bytes: Uint8Array): DecodedCommandEnvelope {
  const reader = new ByteReader(bytes, "command envelope");
  const version = reader.u8();
  if (version !== ENVELOPE_FORMAT_VERSION) {
    throw reader.malformed(
      `unknown format version ${version}; this node reads version ${ENVELOPE_FORMAT_VERSION}`,
    );
  }
  const flags = reader.u8();
  if ((flags & ~FLAG_SESSION) !== 0)
    throw reader.malformed(`unknown flags 0x${flags.toString(16)}`);
  const proposedAtMs = reader.u53();
  let envelope: DecodedCommandEnvelope;
  if ((flags & FLAG_SESSION) !== 0) {
    const clientId = reader.string();
    const sequence = reader.u53();
    const ackedBelow = reader.u53();
    envelope = {
      proposedAtMs,
      session: { clientId, sequence, ackedBelow },
      payload: reader.rest(),
    };
  } else {
    envelope = { proposedAtMs, payload: reader.rest() };
  }
  validateEnvelopeHeader(envelope);
  return envelope;
}
