/** Translations between the domain types the service speaks and the JSON the routes speak. */
import { InvalidArgumentError } from "../common/errors.js";
import type { ConfState } from "../raft/types.js";
import type { KvEntry, KvExpectation } from "../statemachine/kv/types.js";
import type { ConfigJson, MemberJson, StatusResponse } from "./schema/cluster.js";
import type { KvEventEntryJson } from "./schema/events.js";
import type { CasExpectation, KvEntryJson } from "./schema/kv.js";
import { valueFromJson, valueToEventJson, valueToJson } from "./schema/values.js";
import type { MemberView, NodeStatusView } from "./service.js";

/** A kv entry as JSON. Throws nothing. */
export function entryToJson(entry: KvEntry): KvEntryJson {
  return {
    key: entry.key,
    ...valueToJson(entry.value),
    createRevision: entry.createRevision,
    modRevision: entry.modRevision,
    version: entry.version,
  };
}

/** A kv entry as JSON in a change event: `value` or `valueBase64`, never both. Throws nothing. */
export function entryToEventJson(entry: KvEntry): KvEventEntryJson {
  return {
    key: entry.key,
    ...valueToEventJson(entry.value),
    createRevision: entry.createRevision,
    modRevision: entry.modRevision,
    version: entry.version,
  };
}

/**
 * A compare-and-set expectation from JSON: exactly one of `absent`, `modRevision`, `value`,
 * `valueBase64`. Throws `InvalidArgumentError` otherwise.
 */
export function expectationFromJson(expected: CasExpectation): KvExpectation {
  const given = Object.keys(expected).filter(
    (name) => (expected as Record<string, unknown>)[name] !== undefined,
  );
  if (given.length !== 1) {
    throw new InvalidArgumentError(
      "expected must have exactly one of absent, modRevision, value and valueBase64; " +
        `got ${given.length === 0 ? "none" : given.join(", ")}`,
    );
  }
  if (expected.absent === true) return { kind: "absent" };
  if (expected.modRevision !== undefined) {
    return { kind: "modRevision", modRevision: expected.modRevision };
  }
  return { kind: "value", value: valueFromJson(expected, "expected.value") };
}

/** A configuration as JSON. Throws nothing. */
export function configToJson(config: ConfState): ConfigJson {
  return {
    voters: [...config.voters],
    learners: [...config.learners],
    votersOutgoing: [...config.votersOutgoing],
    learnersNext: [...config.learnersNext],
    autoLeave: config.autoLeave,
  };
}

/** The node's status as JSON. Throws nothing. */
export function statusToJson(
  status: NodeStatusView,
): Omit<StatusResponse, "version" | "protocolVersion" | "minProtocolVersion"> {
  return {
    id: status.id,
    term: status.term,
    role: status.role,
    leader: status.leader ?? null,
    commitIndex: status.commitIndex,
    appliedIndex: status.appliedIndex,
    lastIndex: status.lastIndex,
    snapshotIndex: status.snapshotIndex,
    pendingProposals: status.pendingProposals,
    proposalsForwarded: status.proposalsForwarded,
    clusterProtocolVersion: status.clusterProtocolVersion,
    forwardedEntriesApplied: status.forwardedEntriesApplied,
    firstForwardedIndex: status.firstForwardedIndex,
    forwardedProposalsRefused: status.forwardedProposalsRefused,
    leadTransferee: status.leadTransferee ?? null,
    joint: status.config.votersOutgoing.length > 0,
    config: configToJson(status.config),
    progress: [...status.progress].map(([id, p]) => ({
      id,
      match: p.match,
      next: p.next,
      state: String(p.state),
      recentActive: p.recentActive,
      isLearner: p.isLearner,
    })),
    stopped: status.stopped,
  };
}

/** A member as JSON. Throws nothing. */
export function memberToJson(member: MemberView): MemberJson {
  return {
    id: member.id,
    suffrage: member.suffrage,
    outgoing: member.outgoing,
    leader: member.leader,
    ...(member.addresses === undefined
      ? {}
      : { raftAddress: member.addresses.raftAddress, apiAddress: member.addresses.apiAddress }),
    ...(member.release?.protocolVersion === undefined
      ? {}
      : { protocolVersion: member.release.protocolVersion }),
    ...(member.release?.softwareVersion === undefined
      ? {}
      : { version: member.release.softwareVersion }),
  };
}

/** Parses a validated positive-integer string (path or query). Throws `InvalidArgumentError`. */
export function parsePositiveInteger(text: string | undefined, what: string): number {
  const value = Number(text);
  if (text === undefined || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(
      `${what} must be a positive integer, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}
