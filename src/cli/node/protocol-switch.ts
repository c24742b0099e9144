/**
 * A test-only way to start a real node that behaves as the release of an older peer protocol,
 * so a test can build a cluster of "the previous release" and upgrade it node by node. Set
 * `BLIXARD_TEST_PROTOCOL_VERSION=1`: the node advertises protocol 1 in its handshakes (and nothing
 * that release did not send), accepts only peers that offer 1, never forwards proposals and never
 * raises the cluster's protocol version, and hands every log entry's bytes to its state machine as
 * they are, as that release would. Not in `--help`; never set in production (unset: the node
 * speaks every version this release reads). The node logs a warning at start when it is set.
 */
import { ConflictError, InvalidArgumentError } from "../../common/errors.js";
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from "../../transport/codec.js";

/** The environment variable that selects the protocol version (tests only). */
export const TEST_PROTOCOL_ENV = "BLIXARD_TEST_PROTOCOL_VERSION";

/**
 * The newest protocol version the node speaks: PROTOCOL_VERSION, or the test switch's value.
 * @throws InvalidArgumentError if the value is set and not an integer in
 *   MIN_PROTOCOL_VERSION..PROTOCOL_VERSION.
 */
export function nodeProtocolVersion(value: string | undefined): number {
  if (value === undefined || value === "") return PROTOCOL_VERSION;
  const version = Number(value);
  if (!/^\d+$/.test(value) || version < MIN_PROTOCOL_VERSION || version > PROTOCOL_VERSION) {
    throw new InvalidArgumentError(
      `${TEST_PROTOCOL_ENV}=${value} is not a protocol version this release speaks ` +
        `(${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}); unset it`,
    );
  }
  return version;
}

/**
 * Refuses to start a node whose data says the cluster moved to a protocol newer than the node
 * speaks: a downgrade would hand entries it cannot read to its state machine.
 * @throws ConflictError in that case, saying what to run instead.
 */
export function checkNotDowngraded(clusterVersion: number, nodeVersion: number): void {
  if (clusterVersion <= nodeVersion) return;
  throw new ConflictError(
    `this node's data directory says the cluster moved to peer protocol ${clusterVersion}, ` +
      `and this node speaks ${nodeVersion} at newest: start it with a release that speaks ` +
      `${clusterVersion} (downgrades are not supported)`,
  );
}
