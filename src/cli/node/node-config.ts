/**
 * `<dataDir>/node.json`: what a node was started with the first time (id, cluster id, listen
 * addresses, initial members), so a restart needs nothing but `--data-dir`. Flags given on a
 * restart must agree with it.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError } from "../../common/errors.js";
import type { HostPort } from "../options.js";
import type { InitialMember } from "./members.js";

/** The file name inside the data directory. */
export const NODE_CONFIG_FILE = "node.json";
const FORMAT_VERSION = 1;

/** A node's persistent configuration. */
export interface NodeConfig {
  readonly version: 1;
  readonly id: number;
  readonly clusterId: string;
  readonly peerListen: HostPort;
  readonly apiListen: HostPort;
  /**
   * The members the cluster was bootstrapped with (this node included); empty for a node that
   * joined a running cluster.
   */
  readonly initialMembers: readonly InitialMember[];
  /** The API URLs this node joined through (`--join`), if it joined a running cluster. */
  readonly join?: readonly string[];
}

/** What `node start` was given; everything but `dataDir` is optional on a restart. */
export interface NodeStartFlags {
  readonly dataDir: string;
  readonly id?: number;
  readonly clusterId?: string;
  readonly peerListen?: HostPort;
  readonly apiListen?: HostPort;
  readonly initialMembers?: readonly InitialMember[];
  readonly join?: readonly string[];
}

/** Reads `<dataDir>/node.json`, or undefined if there is none. @throws InvalidArgumentError if unreadable. */
export async function readNodeConfig(dataDir: string): Promise<NodeConfig | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, NODE_CONFIG_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let config: NodeConfig;
  try {
    config = JSON.parse(text) as NodeConfig;
  } catch {
    throw new InvalidArgumentError(`${join(dataDir, NODE_CONFIG_FILE)} is not valid JSON`);
  }
  if (config.version !== FORMAT_VERSION || !Number.isSafeInteger(config.id)) {
    throw new InvalidArgumentError(
      `${join(dataDir, NODE_CONFIG_FILE)} is not a node configuration of format ${FORMAT_VERSION}`,
    );
  }
  return config;
}

/** Writes `<dataDir>/node.json` atomically (temporary file, then rename). */
export async function writeNodeConfig(dataDir: string, config: NodeConfig): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, NODE_CONFIG_FILE);
  await writeFile(`${path}.new`, `${JSON.stringify(config, null, 2)}\n`, {
    flush: true,
    mode: 0o600,
  });
  await rename(`${path}.new`, path);
}

/**
 * The configuration to start with: the stored one (checked against any flags) or, on a first
 * start, one built from the flags (`--id`, `--peer-listen`, `--api-listen` required; without
 * `--initial-members` the node bootstraps a single-node cluster of itself).
 * @returns the configuration and whether it is new (to be written).
 * @throws InvalidArgumentError on missing or conflicting flags.
 */
export function resolveNodeConfig(
  stored: NodeConfig | undefined,
  flags: NodeStartFlags,
): { config: NodeConfig; isNew: boolean } {
  if (stored !== undefined) {
    const conflicts: string[] = [];
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
    if (flags.id !== undefined && flags.id !== stored.id) conflicts.push(`--id ${stored.id}`);
    if (flags.clusterId !== undefined && flags.clusterId !== stored.clusterId) {
      conflicts.push(`--cluster-id ${stored.clusterId}`);
    }
    if (flags.peerListen !== undefined && !same(flags.peerListen, stored.peerListen)) {
      conflicts.push(`--peer-listen ${stored.peerListen.host}:${stored.peerListen.port}`);
    }
    if (flags.apiListen !== undefined && !same(flags.apiListen, stored.apiListen)) {
      conflicts.push(`--api-listen ${stored.apiListen.host}:${stored.apiListen.port}`);
    }
    if (flags.initialMembers !== undefined && !same(flags.initialMembers, stored.initialMembers)) {
      conflicts.push(
        stored.join === undefined
          ? "the same --initial-members"
          : `--join ${stored.join.join(",")}`,
      );
    }
    if (flags.join !== undefined && !same(flags.join, stored.join)) {
      conflicts.push(
        stored.join === undefined
          ? "--initial-members (it did not join)"
          : `--join ${stored.join.join(",")}`,
      );
    }
    if (conflicts.length > 0) {
      throw new InvalidArgumentError(
        `${join(flags.dataDir, NODE_CONFIG_FILE)} was created with ${conflicts.join(", ")}; ` +
          "start with --data-dir alone, or use a new data directory",
      );
    }
    return { config: stored, isNew: false };
  }
  const missing = (["id", "peerListen", "apiListen"] as const).filter(
    (k) => flags[k] === undefined,
  );
  if (missing.length > 0 || flags.peerListen === undefined || flags.apiListen === undefined) {
    throw new InvalidArgumentError(
      `${flags.dataDir} has no ${NODE_CONFIG_FILE}: a first start needs ` +
        missing.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(", "),
    );
  }
  const id = flags.id ?? 0;
  if (flags.join !== undefined) {
    if (flags.initialMembers !== undefined) {
      throw new InvalidArgumentError("give --join or --initial-members, not both");
    }
    // The listen addresses are what the node tells the cluster to reach it at.
    for (const [flag, address] of [
      ["--peer-listen", flags.peerListen],
      ["--api-listen", flags.apiListen],
    ] as const) {
      if (["0.0.0.0", "::", ""].includes(address.host)) {
        throw new InvalidArgumentError(
          `${flag} ${address.host}:${address.port}: a joining node announces its listen ` +
            "addresses to the cluster, so give an address its peers can reach",
        );
      }
    }
  }
  const initialMembers: readonly InitialMember[] =
    flags.join !== undefined
      ? []
      : (flags.initialMembers ?? [
          {
            id,
            peerAddress: `${flags.peerListen.host}:${flags.peerListen.port}`,
            apiAddress: new URL(`http://${flags.apiListen.host}:${flags.apiListen.port}`).href,
          },
        ]);
  if (flags.join === undefined && !initialMembers.some((m) => m.id === id)) {
    throw new InvalidArgumentError(`--initial-members does not include this node's id ${id}`);
  }
  if (flags.peerListen.port === 0 || flags.apiListen.port === 0) {
    throw new InvalidArgumentError("a node needs fixed ports: its peers and clients must find it");
  }
  return {
    config: {
      version: FORMAT_VERSION,
      id,
      clusterId: flags.clusterId ?? DEFAULT_CLUSTER_ID,
      peerListen: flags.peerListen,
      apiListen: flags.apiListen,
      initialMembers,
      ...(flags.join === undefined ? {} : { join: flags.join }),
    },
    isNew: true,
  };
}

/** The cluster id when `--cluster-id` is not given. */
export const DEFAULT_CLUSTER_ID = "blixard";
