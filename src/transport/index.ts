/** The peer transport: raft messages and snapshots between nodes. */
export type { SnapshotDelivery, Transport, TransportHandlers } from "./transport.js";
export {
  TcpTransport,
  type ReceivedStats,
  type TcpTransportOptions,
  type TransportTlsOptions,
} from "./tcp-transport.js";
export { DEFAULT_TRANSPORT_LIMITS, type TransportLimits } from "./limits.js";
export { SILENT_LOGGER, type Logger } from "../common/logger.js";
export { formatAddress, parsePeerAddress, type PeerAddress } from "./address.js";
export type { PeerStats } from "./peer-connection.js";
export {
  decodeFrame,
  encodeFrame,
  fromWireMessage,
  toWireMessage,
  PROTOCOL_VERSION,
  MIN_PROTOCOL_VERSION,
} from "./codec.js";
