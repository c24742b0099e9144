import { InvalidArgumentError } from "../common/errors.js";

/** Where a peer's transport listens. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses a peer address: a `URL` (any scheme, e.g. `blixard://10.0.0.2:7000`), or a
 * `host:port` string (`[::1]:7000` for IPv6).
 * @throws InvalidArgumentError if there is no host or no valid port.
 */
export function parsePeerAddress(address: URL | string | PeerAddress): PeerAddress {
  if (typeof address === "object" && !(address instanceof URL)) return checked(address);
  let url: URL;
  try {
    url = address instanceof URL ? address : new URL(`tcp://${address}`);
  } catch {
    throw new InvalidArgumentError(`peer address "${String(address)}" is not host:port or a URL`);
  }
  // URL keeps the brackets of an IPv6 host; node:net wants the bare address.
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return checked({ host, port: Number(url.port) });
}

function checked(address: PeerAddress): PeerAddress {
  if (address.host === "" || !Number.isInteger(address.port) || address.port <= 0) {
    throw new InvalidArgumentError(
      `peer address ${address.host}:${address.port} needs a host and a port in 1..65535`,
    );
  }
  if (address.port > 65535) {
    throw new InvalidArgumentError(`peer port ${address.port} is out of range 1..65535`);
  }
  return { host: address.host, port: address.port };
}

/** `host:port` for logs. */
export function formatAddress(address: PeerAddress): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}
