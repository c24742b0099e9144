/**
 * The `Host` header check against DNS rebinding: a web page whose DNS name is re-pointed at a
 * node's address must not be able to talk to the API from a browser. Requests naming the node by
 * an IP address are always accepted (rebinding needs a DNS name), as are `localhost`, this
 * machine's host name, the node's certificate names and any name the operator lists
 * (`--api-allowed-host`); `*` turns the check off. Other names get 400 INVALID_ARGUMENT.
 */
import { isIP } from "node:net";
import { hostname } from "node:os";
import { InvalidArgumentError } from "../common/errors.js";

/** Builds the check; `allowed` are extra host names (lower case), `*` for any. Throws nothing. */
export function hostChecker(allowed: readonly string[]): (host: string | undefined) => void {
  if (allowed.includes("*")) return () => undefined;
  const names = new Set([
    "localhost",
    hostname().toLowerCase(),
    ...allowed.map((n) => n.toLowerCase()),
  ]);
  return (host) => {
    if (host === undefined) return; // HTTP/1.0 without Host: no browser sends that.
    const name = hostOf(host).toLowerCase();
    if (isIP(name) !== 0 || names.has(name) || name.endsWith(".blixard")) return;
    throw new InvalidArgumentError(
      `Host ${JSON.stringify(name)} is not a name of this node; use its address, or start the node with --api-allowed-host ${name}`,
    );
  };
}

/** The host part of a Host header: `[::1]:80` → `::1`, `a:80` → `a`. */
function hostOf(header: string): string {
  if (header.startsWith("["))
    return header.slice(1, header.indexOf("]") < 0 ? undefined : header.indexOf("]"));
  const colon = header.lastIndexOf(":");
  return colon < 0 ? header : header.slice(0, colon);
}
