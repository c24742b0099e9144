/** The operator routes' shapes: a consistent copy of the whole replicated state (backup). */
import { Type, type Static } from "@sinclair/typebox";

/** One member of the configuration the snapshot was taken in (for information on restore). */
export const SnapshotMemberJson = Type.Object({
  id: Type.Integer(),
  suffrage: Type.Union([Type.Literal("voter"), Type.Literal("learner")]),
  raftAddress: Type.Optional(Type.String()),
  apiAddress: Type.Optional(Type.String()),
});
/** One member named in a snapshot. */
export type SnapshotMemberJson = Static<typeof SnapshotMemberJson>;

/**
 * GET /v1/operator/snapshot: the state machine's snapshot (kv, orchestrator, ACL, sessions) at
 * `index`, taken after a linearizable read barrier, so it holds every write acknowledged before
 * the request. `sha256` is of the decoded `dataBase64`.
 */
export const OperatorSnapshotResponse = Type.Object({
  clusterId: Type.String(),
  index: Type.Integer({ description: "the raft log index the state is at" }),
  term: Type.Integer({ description: "the term of the entry at index" }),
  takenBy: Type.Integer({ description: "the node that took it" }),
  version: Type.String({ description: "the software version of that node" }),
  members: Type.Array(SnapshotMemberJson),
  sha256: Type.String({ description: "hex SHA-256 of the data" }),
  dataBase64: Type.String(),
});
/** GET /v1/operator/snapshot response. */
export type OperatorSnapshotResponse = Static<typeof OperatorSnapshotResponse>;
