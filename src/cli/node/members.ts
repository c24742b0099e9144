/**
 * The initial member list of a bootstrapping cluster:
 * `ID=PEER_HOST:PORT@API_HOST:PORT[,...]`, e.g.
 * `1=127.0.0.1:7001@127.0.0.1:8001,2=127.0.0.1:7002@127.0.0.1:8002`. The API address may also be
 * a full URL (`https://...`); a bare `host:port` means `http://host:port`.
 */
import { InvalidArgumentError } from "commander";
import { formatHostPort, parseHostPort, parsePositiveInt } from "../options.js";

/** One initial member: its id, where its peer transport listens and its API base URL. */
export interface InitialMember {
  readonly id: number;
  /** `host:port` of the peer transport. */
  readonly peerAddress: string;
  /** The API base URL, e.g. `http://127.0.0.1:8001/`. */
  readonly apiAddress: string;
}

/** Parses an `--initial-members` value; throws commander's InvalidArgumentError (usage error). */
export function parseInitialMembers(value: string): InitialMember[] {
  const members: InitialMember[] = [];
  for (const part of value.split(",").map((p) => p.trim())) {
    if (part === "") continue;
    const match = /^(\d+)=([^@]+)@(.+)$/.exec(part);
    if (match === null) {
      throw new InvalidArgumentError(`"${part}" is not ID=PEER_HOST:PORT@API_HOST:PORT`);
    }
    const id = parsePositiveInt(match[1] ?? "");
    const peer = parseHostPort(match[2] ?? "");
    const api = apiUrl(match[3] ?? "");
    if (peer.port === 0) throw new InvalidArgumentError(`member ${id} needs a peer port`);
    if (members.some((m) => m.id === id)) {
      throw new InvalidArgumentError(`member id ${id} appears twice`);
    }
    members.push({ id, peerAddress: formatHostPort(peer), apiAddress: api });
  }
  if (members.length === 0) throw new InvalidArgumentError("the member list is empty");
  return members;
}

/** Formats members back into the `--initial-members` syntax. */
export function formatInitialMembers(members: readonly InitialMember[]): string {
  return members.map((m) => `${m.id}=${m.peerAddress}@${new URL(m.apiAddress).host}`).join(",");
}

/** Parses an API address: a URL, or `host:port` meaning `http://host:port`. Usage error if bad. */
export function apiUrl(value: string): string {
  if (/^https?:\/\//.test(value)) {
    if (!URL.canParse(value)) throw new InvalidArgumentError(`"${value}" is not a URL`);
    return new URL(value).href;
  }
  const address = parseHostPort(value);
  if (address.port === 0) throw new InvalidArgumentError(`"${value}" needs an API port`);
  return new URL(`http://${formatHostPort(address)}`).href;
}
