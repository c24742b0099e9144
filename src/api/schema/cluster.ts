/** The cluster routes' request and response shapes. */
import { Type, type Static } from "@sinclair/typebox";

/** A member id in the path: a positive integer. */
export const MemberIdParams = Type.Object({ id: Type.String({ pattern: "^[1-9][0-9]{0,15}$" }) });
/** Path parameters of member routes. */
export type MemberIdParams = Static<typeof MemberIdParams>;

const NodeIdField = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

/** A raft configuration (joint while `votersOutgoing` is non-empty). */
export const ConfigJson = Type.Object({
  voters: Type.Array(Type.Integer()),
  learners: Type.Array(Type.Integer()),
  votersOutgoing: Type.Array(Type.Integer()),
  learnersNext: Type.Array(Type.Integer()),
  autoLeave: Type.Boolean(),
});
/** A raft configuration. */
export type ConfigJson = Static<typeof ConfigJson>;

/** The leader's view of one peer. */
export const PeerProgressJson = Type.Object({
  id: Type.Integer(),
  match: Type.Integer(),
  next: Type.Integer(),
  state: Type.String(),
  recentActive: Type.Boolean(),
  isLearner: Type.Boolean(),
});
/** The leader's view of one peer. */
export type PeerProgressJson = Static<typeof PeerProgressJson>;

/** GET /v1/cluster/status. `leader` is null while no leader is known. */
export const StatusResponse = Type.Object({
  id: Type.Integer(),
  term: Type.Integer(),
  role: Type.String({ description: "follower, pre-candidate, candidate or leader" }),
  leader: Type.Union([Type.Integer(), Type.Null()]),
  commitIndex: Type.Integer(),
  appliedIndex: Type.Integer(),
  lastIndex: Type.Integer(),
  snapshotIndex: Type.Integer(),
  pendingProposals: Type.Integer(),
  proposalsForwarded: Type.Integer({
    description: "writes this node handed to the leader over the peer transport since it started",
  }),
  clusterProtocolVersion: Type.Integer({
    description:
      "the cluster's protocol version as far as this node applied the log: 2 once every member speaks 2 (forwarded proposals in use)",
  }),
  forwardedEntriesApplied: Type.Integer({
    description: "forwarded-proposal entries this node applied since it started (replay included)",
  }),
  firstForwardedIndex: Type.Integer({
    description:
      "the lowest log index of a forwarded-proposal entry applied since it started, or 0",
  }),
  forwardedProposalsRefused: Type.Integer({
    description:
      "forwarded proposals this node refused to append as leader while the gate was closed",
  }),
  leadTransferee: Type.Union([Type.Integer(), Type.Null()]),
  joint: Type.Boolean({ description: "a joint configuration change is under way" }),
  config: ConfigJson,
  progress: Type.Array(PeerProgressJson, { description: "per peer; on the leader only" }),
  stopped: Type.Boolean(),
  version: Type.String({ description: "the node's software version" }),
  protocolVersion: Type.Integer({ description: "the newest peer protocol version it speaks" }),
  minProtocolVersion: Type.Integer({ description: "the oldest peer protocol version it reads" }),
});
/** GET /v1/cluster/status response. */
export type StatusResponse = Static<typeof StatusResponse>;

/** One member: suffrage from the configuration, addresses when this node knows them. */
export const MemberJson = Type.Object({
  id: Type.Integer(),
  suffrage: Type.Union([Type.Literal("voter"), Type.Literal("learner")]),
  outgoing: Type.Boolean({ description: "a voter of the outgoing half of a joint config" }),
  leader: Type.Boolean(),
  raftAddress: Type.Optional(Type.String()),
  apiAddress: Type.Optional(Type.String()),
  protocolVersion: Type.Optional(
    Type.Integer({
      description: "the newest peer protocol version the member speaks, as this node last heard",
    }),
  ),
  version: Type.Optional(
    Type.String({ description: "the member's software version, as this node last heard" }),
  ),
});
/** One member. */
export type MemberJson = Static<typeof MemberJson>;

/** GET /v1/cluster/members response. */
export const MembersResponse = Type.Object({
  leader: Type.Union([Type.Integer(), Type.Null()]),
  joint: Type.Boolean(),
  members: Type.Array(MemberJson),
});
/** GET /v1/cluster/members response. */
export type MembersResponse = Static<typeof MembersResponse>;

/** POST /v1/cluster/members body: add a learner. */
export const AddMemberBody = Type.Object(
  {
    id: NodeIdField,
    raftAddress: Type.String({ minLength: 1, maxLength: 2048 }),
    apiAddress: Type.String({ minLength: 1, maxLength: 2048, description: "an http(s) URL" }),
  },
  { additionalProperties: false },
);
/** POST /v1/cluster/members body. */
export type AddMemberBody = Static<typeof AddMemberBody>;

/** The configuration after a membership change applied. */
export const ConfigResponse = Type.Object({ config: ConfigJson });
/** A membership change's response. */
export type ConfigResponse = Static<typeof ConfigResponse>;

/** POST /v1/cluster/transfer-leader body. */
export const TransferLeaderBody = Type.Object({ id: NodeIdField }, { additionalProperties: false });
/** POST /v1/cluster/transfer-leader body. */
export type TransferLeaderBody = Static<typeof TransferLeaderBody>;

/** POST /v1/cluster/replace body: the member to remove and the learner that takes its place. */
export const ReplaceMemberBody = Type.Object(
  { remove: NodeIdField, promote: NodeIdField },
  { additionalProperties: false },
);
/** POST /v1/cluster/replace body. */
export type ReplaceMemberBody = Static<typeof ReplaceMemberBody>;

/** POST /v1/cluster/transfer-leader response: the new leader. */
export const TransferLeaderResponse = Type.Object({ leader: Type.Integer() });
/** POST /v1/cluster/transfer-leader response. */
export type TransferLeaderResponse = Static<typeof TransferLeaderResponse>;

/** GET /healthz response. */
export const HealthResponse = Type.Object({ status: Type.Literal("ok"), id: Type.Integer() });
/** GET /healthz response. */
export type HealthResponse = Static<typeof HealthResponse>;

/** GET /readyz response (200); not ready is a 503 UNAVAILABLE error. */
export const ReadyResponse = Type.Object({ ready: Type.Literal(true), leader: Type.Integer() });
/** GET /readyz response. */
export type ReadyResponse = Static<typeof ReadyResponse>;
