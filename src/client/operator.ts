/**
 * The operator part of the SDK, reached as `client.operator`: a backup of the whole replicated
 * state, checked against the SHA-256 the node computed before it is handed over.
 */
import { createHash } from "node:crypto";
import type { OperatorSnapshotResponse, SnapshotMemberJson } from "../api/schema/index.js";
import { UnavailableError } from "../common/errors.js";
import type { OrchestratorTransport } from "./orchestrator.js";
import type { RequestOptions } from "./types.js";

export type { SnapshotMemberJson as SnapshotMember };

/** A backup as the cluster sent it, its bytes decoded and checked. */
export interface ClusterBackup {
  readonly clusterId: string;
  /** The raft log index the state is at. */
  readonly index: number;
  readonly term: number;
  readonly takenBy: number;
  /** The software version of the node that took it. */
  readonly version: string;
  readonly members: readonly SnapshotMemberJson[];
  /** Hex SHA-256 of {@link data}. */
  readonly sha256: string;
  /** The state machine's snapshot bytes. */
  readonly data: Uint8Array;
}

/** The default deadline of a backup: the state may be large (a read, so retried). */
export const BACKUP_TIMEOUT_MS = 60_000;

/** The operator calls of a Blixard client. */
export class OperatorClient {
  readonly #transport: OrchestratorTransport;

  /** @param transport the owning client's. Throws nothing. */
  constructor(transport: OrchestratorTransport) {
    this.#transport = transport;
  }

  /**
   * A consistent snapshot of the whole replicated state (kv, orchestrator, ACL, sessions) at a
   * known log index: it holds every write acknowledged before the call. Needs `cluster:operator`.
   * @throws UnavailableError if the bytes do not match the node's checksum (a damaged transfer).
   */
  async snapshot(options: RequestOptions = {}): Promise<ClusterBackup> {
    const body = (await this.#transport.read(
      { method: "GET", path: "/v1/operator/snapshot" },
      { timeoutMs: BACKUP_TIMEOUT_MS, ...options },
    )) as OperatorSnapshotResponse;
    const data = new Uint8Array(Buffer.from(body.dataBase64, "base64"));
    const sha256 = createHash("sha256").update(data).digest("hex");
    if (sha256 !== body.sha256) {
      throw new UnavailableError(
        `the snapshot arrived damaged (SHA-256 ${sha256}, the node sent ${body.sha256}); take it again`,
      );
    }
    return {
      clusterId: body.clusterId,
      index: body.index,
      term: body.term,
      takenBy: body.takenBy,
      version: body.version,
      members: body.members,
      sha256,
      data,
    };
  }
}
