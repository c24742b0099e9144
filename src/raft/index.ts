/**
 * The consensus core: a pure, deterministic Raft implementation after etcd's RawNode design.
 * The application drives a {@link RawNode} and honours the {@link Ready} contract.
 */
export * from "./types.js";
export { RawNode, canSendBeforePersist } from "./rawnode.js";
export type { Ready, RaftStatus, PeerProgress, SnapshotOutcome } from "./rawnode.js";
export type { RaftInspection } from "./inspection.js";
export { resolveRaftConfig, RAFT_DEFAULTS } from "./config.js";
export type { RaftConfig } from "./config.js";
export { ReadOnlyOption } from "./read-only.js";
export { CampaignType } from "./raft.js";
export { MemoryStorage, CompactedError, LogUnavailableError } from "./storage.js";
export type { Storage } from "./storage.js";
export { encodeConfChange, decodeConfChange } from "./conf-change-codec.js";
export { ProgressState } from "./tracker/index.js";
export { plantedRules, NO_PLANTED_BUGS } from "./planted-bugs.js";
export { RAFT_RULES } from "./rules.js";
export type { SafetyRules } from "./rules.js";
export type { PlantedBugs } from "./planted-bugs.js";
