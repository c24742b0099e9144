/**
 * `<dataDir>/members.json`: the addresses of the members a node knows (itself included), kept
 * up to date from the membership changes it applies and rewritten atomically (temporary file,
 * then rename) after every change, so a restarted node, or one that joined through a snapshot,
 * still knows where its peers are. Without the file (a node started before it existed) the
 * initial members seed the directory. It also keeps the cluster's protocol version this node
 * applied (`node/protocol-gate.ts`), so a restart knows it even after a snapshot compacted the
 * entry away; the field is absent until the cluster moved past version 1, and releases before it
 * ignore it (format 1 is unchanged otherwise).
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { MemberDirectory } from "../../api/member-directory.js";
import type { MemberAddresses } from "../../api/service.js";
import type { NodeId } from "../../raft/types.js";
import type { JsonLogger } from "../log.js";
import type { InitialMember } from "./members.js";

/** The file name inside the data directory. */
export const MEMBERS_FILE = "members.json";
const FORMAT_VERSION = 1;

interface MembersFile {
  readonly version: 1;
  readonly members: readonly ({ readonly id: NodeId } & MemberAddresses)[];
  /** The cluster's protocol version this node applied; absent: 1. */
  readonly clusterProtocolVersion?: number;
}

/** A {@link MemberDirectory} persisted in `<dataDir>/members.json`. */
export class PersistentMemberDirectory implements MemberDirectory {
  readonly #members = new Map<NodeId, MemberAddresses>();
  readonly #path: string;
  readonly #log: JsonLogger;
  /**
   * Every member's API speaks what this node's does (HTTPS unless `--insecure`): addresses are
   * stored with this scheme, whatever the member list was written with.
   */
  readonly #apiScheme: "http:" | "https:";
  /** The write in flight, if any; a change meanwhile sets {@link #again}. */
  #writing: Promise<void> | undefined;
  #again = false;
  #clusterProtocolVersion = 1;

  private constructor(path: string, log: JsonLogger, apiScheme: "http:" | "https:") {
    this.#path = path;
    this.#log = log;
    this.#apiScheme = apiScheme;
  }

  /**
   * Loads `<dataDir>/members.json`, or seeds the directory with `initial` when there is none.
   * An unreadable file is logged and ignored (the initial members and later changes refill it).
   */
  static async load(
    dataDir: string,
    initial: readonly InitialMember[],
    log: JsonLogger,
    apiScheme: "http:" | "https:" = "http:",
  ): Promise<PersistentMemberDirectory> {
    const directory = new PersistentMemberDirectory(join(dataDir, MEMBERS_FILE), log, apiScheme);
    let stored: MembersFile | undefined;
    try {
      stored = JSON.parse(await readFile(directory.#path, "utf8")) as MembersFile;
      if (stored.version !== FORMAT_VERSION || !Array.isArray(stored.members)) {
        throw new Error(`not a member list of format ${FORMAT_VERSION}`);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        log.warn("ignoring unreadable member list", {
          path: directory.#path,
          error: (error as Error).message,
        });
      }
      stored = undefined;
    }
    const storedProtocol = stored?.clusterProtocolVersion;
    if (typeof storedProtocol === "number" && Number.isSafeInteger(storedProtocol)) {
      directory.#clusterProtocolVersion = Math.max(1, storedProtocol);
    }
    const members =
      stored?.members ??
      initial.map((m) => ({ id: m.id, raftAddress: m.peerAddress, apiAddress: m.apiAddress }));
    for (const m of members) {
      directory.#members.set(m.id, {
        raftAddress: m.raftAddress,
        apiAddress: withScheme(m.apiAddress, apiScheme),
      });
    }
    if (
      stored !== undefined &&
      stored.members.some((m) => m.apiAddress !== withScheme(m.apiAddress, apiScheme))
    ) {
      directory.#persist();
    }
    return directory;
  }

  /** @inheritdoc */
  get(id: NodeId): MemberAddresses | undefined {
    return this.#members.get(id);
  }

  /** @inheritdoc Persists the change (in the background; see {@link flush}). */
  set(id: NodeId, given: MemberAddresses): void {
    const addresses = {
      raftAddress: given.raftAddress,
      apiAddress: withScheme(given.apiAddress, this.#apiScheme),
    };
    const known = this.#members.get(id);
    if (known?.raftAddress === addresses.raftAddress && known.apiAddress === addresses.apiAddress) {
      return;
    }
    this.#members.set(id, addresses);
    this.#persist();
  }

  /** @inheritdoc Persists the change (in the background; see {@link flush}). */
  delete(id: NodeId): void {
    if (this.#members.delete(id)) this.#persist();
  }

  /** The cluster's protocol version this node applied (1 until it moved on). */
  get clusterProtocolVersion(): number {
    return this.#clusterProtocolVersion;
  }

  /** Records a raised cluster protocol version (never lowers it); persists in the background. */
  setClusterProtocolVersion(version: number): void {
    if (version <= this.#clusterProtocolVersion) return;
    this.#clusterProtocolVersion = version;
    this.#persist();
  }

  /** Every known member and its addresses, by id. */
  entries(): [NodeId, MemberAddresses][] {
    return [...this.#members].sort(([a], [b]) => a - b);
  }

  /** Resolves once every change so far is on disk. Throws nothing. */
  async flush(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
  }

  /** Writes the file now, or once more after the write in flight. */
  #persist(): void {
    if (this.#writing !== undefined) {
      this.#again = true;
      return;
    }
    this.#writing = (async () => {
      do {
        this.#again = false;
        const file: MembersFile = {
          version: FORMAT_VERSION,
          members: this.entries().map(([id, a]) => ({ id, ...a })),
          ...(this.#clusterProtocolVersion > 1
            ? { clusterProtocolVersion: this.#clusterProtocolVersion }
            : {}),
        };
        try {
          await writeFile(`${this.#path}.new`, `${JSON.stringify(file, null, 2)}\n`, {
            flush: true,
            mode: 0o600,
          });
          await rename(`${this.#path}.new`, this.#path);
        } catch (error) {
          this.#log.warn("cannot write the member list", {
            path: this.#path,
            error: (error as Error).message,
          });
        }
      } while (this.#again);
      this.#writing = undefined;
    })();
  }
}

/** `url` with `scheme` when it is an http(s) URL; anything else as given. Throws nothing. */
export function withScheme(url: string, scheme: "http:" | "https:"): string {
  if (!URL.canParse(url)) return url;
  const parsed = new URL(url);
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return url;
  parsed.protocol = scheme;
  return parsed.href;
}
