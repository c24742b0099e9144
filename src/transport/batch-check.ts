/**
 * The checks every batch from a peer passes before its messages reach the runtime, whichever
 * side of a connection it arrived on: the accepting side (`inbound-connection.ts`) and, on links
 * of protocol 3 and later, the dialling side (`peer-connection.ts`, the answers a peer sends back
 * on the connection this node dialled). One place, so both sides refuse exactly the same input.
 * Private to src/transport.
 */
import { InvalidArgumentError } from "../common/errors.js";
import type { Message, MessageType, NodeId } from "../raft/types.js";
import type { DecodedBatch } from "./batch-codec.js";
import { invalidMessageReason, type MessageBounds } from "./validate-message.js";

/** A rule of the peer protocol broken by the peer: its connection is refused or closed. */
export class ProtocolViolation extends InvalidArgumentError {}

/** A message with a field out of range or inconsistent: counted apart from protocol violations. */
export class InvalidMessage extends ProtocolViolation {
  constructor(
    reason: string,
    readonly type: MessageType,
  ) {
    super(`invalid message: ${reason}`);
  }
}

/** Which batches a connection may carry: its cluster, the peer that sends and this node. */
export interface BatchLink {
  readonly clusterId: string;
  readonly peerId: NodeId;
  readonly selfId: NodeId;
}

/**
 * The batch's messages, once its header names this link and every message is one a correct
 * peer sends (see validate-message.ts).
 * @throws ProtocolViolation for a batch of another cluster or link; InvalidMessage for the first
 *   invalid message (the whole batch is refused: the peer is broken or hostile).
 */
export function checkBatch(
  batch: DecodedBatch,
  link: BatchLink,
  bounds: MessageBounds,
): readonly Message[] {
  if (batch.clusterId !== link.clusterId) {
    throw new ProtocolViolation(`batch for cluster "${batch.clusterId}"`);
  }
  if (batch.from !== link.peerId || batch.to !== link.selfId) {
    throw new ProtocolViolation(`batch from ${batch.from} to ${batch.to} on this link`);
  }
  for (const m of batch.messages) checkMessage(m, link, bounds);
  return batch.messages;
}

/**
 * `m`, if a correct peer sends it on this link.
 * @throws InvalidMessage otherwise.
 */
export function checkMessage(m: Message, link: BatchLink, bounds: MessageBounds): Message {
  const reason = invalidMessageReason(m, { from: link.peerId, to: link.selfId }, bounds);
  if (reason !== undefined) throw new InvalidMessage(reason, m.type);
  return m;
}
