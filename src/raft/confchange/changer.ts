/**
 * Membership changes (etcd confchange): computes the configuration and progress map a change
 * leads to, and refuses changes that would break an invariant before they take effect.
 */
import { InvalidArgumentError } from "../../common/errors.js";
import { Progress } from "../tracker/progress.js";
import type { TrackerConfig } from "../tracker/tracker.js";
import { emptyTrackerConfig } from "../tracker/tracker.js";
import type { ConfChangeSingle, ConfState, NodeId } from "../types.js";
import { ConfChangeType } from "../types.js";

/** The result of a change: a new config and progress map; the inputs are never mutated. */
export interface ChangeResult {
  readonly config: TrackerConfig;
  readonly progress: Map<NodeId, Progress>;
}

/** How to build a {@link Changer}. */
export interface ChangerOptions {
  /** The configuration to change. */
  readonly config: TrackerConfig;
  /** The progress of every member of `config`. */
  readonly progress: ReadonlyMap<NodeId, Progress>;
  /** The leader's last log index: new members are probed from there. */
  readonly lastIndex: number;
  /** The inflight window of a new member, in messages. */
  readonly maxInflightMessages: number;
  /** The inflight window of a new member, in payload bytes; 0 = no byte limit. */
  readonly maxInflightBytes: number;
}

/** The mutable working copy a change is applied to. */
interface WorkingConfig {
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;
  learners: Set<NodeId>;
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

/**
 * Computes configuration changes (etcd confchange.Changer). Each method starts from the
 * configuration the Changer was built with; none mutates it, so a Changer may be reused.
 */
export class Changer {
  private readonly options: ChangerOptions;

  /** Keeps `options` by reference; nothing in them is mutated. */
  constructor(options: ChangerOptions) {
    this.options = options;
  }

  /**
   * Enter a joint config: outgoing := current incoming, then apply changes to incoming
   * (C_old → C_old,new).
   * @throws InvalidArgumentError if already joint, if there are no voters to start from, if a
   *   change is malformed, if incoming would be empty, or if the result breaks an invariant.
   */
  enterJoint(autoLeave: boolean, changes: readonly ConfChangeSingle[]): ChangeResult {
    const { config, progress } = this.checkAndCopy();
    if (isJoint(config)) {
      throw new InvalidArgumentError("config is already joint; leave it before entering another");
    }
    if (config.incoming.size === 0) {
      // An empty config may be built up by simple changes (bootstrap), but a joint config
      // with an empty outgoing half would not be joint at all.
      throw new InvalidArgumentError("can't make a zero-voter config joint");
    }
    config.outgoing = new Set(config.incoming);
    this.apply(config, progress, changes);
    config.autoLeave = autoLeave;
    return checkAndReturn(config, progress);
  }

  /**
   * Leave joint: outgoing cleared, learnersNext become learners, nodes only in outgoing removed
   * from progress (C_old,new → C_new).
   * @throws InvalidArgumentError if not joint.
   */
  leaveJoint(): ChangeResult {
    const { config, progress } = this.checkAndCopy();
    if (!isJoint(config)) {
      throw new InvalidArgumentError("can't leave a non-joint config");
    }
    for (const id of config.learnersNext) {
      config.learners.add(id);
      progressOf(progress, id).isLearner = true;
    }
    config.learnersNext.clear();
    for (const id of config.outgoing) {
      if (!config.incoming.has(id) && !config.learners.has(id)) {
        progress.delete(id);
      }
    }
    config.outgoing.clear();
    config.autoLeave = false;
    return checkAndReturn(config, progress);
  }

  /**
   * Apply changes that alter at most one voter, outside a joint config (a one-voter change is
   * safe because any majority of the old and of the new config intersect).
   * @throws InvalidArgumentError if joint ("can't apply simple config change in joint config"),
   *   if more than one voter changed, if all voters would be removed, or if a change is
   *   malformed.
   */
  simple(changes: readonly ConfChangeSingle[]): ChangeResult {
    const { config, progress } = this.checkAndCopy();
    if (isJoint(config)) {
      throw new InvalidArgumentError("can't apply simple config change in joint config");
    }
    this.apply(config, progress, changes);
    if (symmetricDifferenceSize(this.options.config.voters.incoming, config.incoming) > 1) {
      throw new InvalidArgumentError(
        "more than one voter changed without entering joint config; use a joint conf change",
      );
    }
    return checkAndReturn(config, progress);
  }

  /**
   * Applies changes in order. Voter changes always go to the incoming half; the outgoing half
   * is either empty or the frozen C_old.
   */
  private apply(
    config: WorkingConfig,
    progress: Map<NodeId, Progress>,
    changes: readonly ConfChangeSingle[],
  ): void {
    for (const change of changes) {
      checkNodeId(change.nodeId);
      switch (change.type) {
        case ConfChangeType.AddNode:
          this.makeVoter(config, progress, change.nodeId);
          break;
        case ConfChangeType.AddLearnerNode:
          this.makeLearner(config, progress, change.nodeId);
          break;
        case ConfChangeType.RemoveNode:
          remove(config, progress, change.nodeId);
          break;
        default:
          throw new InvalidArgumentError(
            `unknown conf change type ${String(change.type)} for node ${change.nodeId}`,
          );
      }
    }
    if (config.incoming.size === 0) {
      throw new InvalidArgumentError("the change removes all voters; keep at least one");
    }
  }

  /** Adds `id` as an incoming voter, promoting it if it is a learner. */
  private makeVoter(config: WorkingConfig, progress: Map<NodeId, Progress>, id: NodeId): void {
    const pr = progress.get(id);
    if (pr === undefined) {
      this.initProgress(config, progress, id, false);
      return;
    }
    pr.isLearner = false;
    config.learners.delete(id);
    config.learnersNext.delete(id);
    config.incoming.add(id);
  }

  /**
   * Makes `id` a learner. If it is still an outgoing voter it cannot be a learner yet (learners
   * and voters stay disjoint), so it is staged in learnersNext until the joint config is left.
   */
  private makeLearner(config: WorkingConfig, progress: Map<NodeId, Progress>, id: NodeId): void {
    const pr = progress.get(id);
    if (pr === undefined) {
      this.initProgress(config, progress, id, true);
      return;
    }
    if (pr.isLearner) {
      return;
    }
    // Demote from incoming voter, but keep the progress: the follower's log is still there.
    remove(config, progress, id);
    progress.set(id, pr);
    if (config.outgoing.has(id)) {
      config.learnersNext.add(id);
    } else {
      pr.isLearner = true;
      config.learners.add(id);
    }
  }

  /** Adds a brand-new member with a fresh progress. */
  private initProgress(
    config: WorkingConfig,
    progress: Map<NodeId, Progress>,
    id: NodeId,
    isLearner: boolean,
  ): void {
    if (isLearner) {
      config.learners.add(id);
    } else {
      config.incoming.add(id);
    }
    progress.set(
      id,
      new Progress({
        // Probing from the last index is optimistic; a rejection walks it back.
        next: Math.max(this.options.lastIndex, 1),
        match: 0,
        maxInflightMessages: this.options.maxInflightMessages,
        maxInflightBytes: this.options.maxInflightBytes,
        isLearner,
        // Counted as active so a check-quorum right after the change does not depose the
        // leader before the new member had a chance to answer.
        recentActive: true,
      }),
    );
  }

  /** Copies the input (deeply enough that nothing here mutates it) after validating it. */
  private checkAndCopy(): { config: WorkingConfig; progress: Map<NodeId, Progress> } {
    const input = this.options.config;
    const config: WorkingConfig = {
      incoming: new Set(input.voters.incoming),
      outgoing: new Set(input.voters.outgoing),
      learners: new Set(input.learners),
      learnersNext: new Set(input.learnersNext),
      autoLeave: input.autoLeave,
    };
    const progress = new Map<NodeId, Progress>();
    for (const [id, pr] of this.options.progress) {
      progress.set(id, pr.clone());
    }
    checkInvariants(config, progress);
    return { config, progress };
  }
}

/** Removes `id` from the incoming voters and the learners; keeps its progress if it is an outgoing voter. */
function remove(config: WorkingConfig, progress: Map<NodeId, Progress>, id: NodeId): void {
  if (!progress.has(id)) {
    return;
  }
  config.incoming.delete(id);
  config.learners.delete(id);
  config.learnersNext.delete(id);
  if (!config.outgoing.has(id)) {
    progress.delete(id);
  }
}

function isJoint(config: WorkingConfig): boolean {
  return config.outgoing.size > 0;
}

function checkNodeId(id: NodeId): void {
  if (!Number.isSafeInteger(id) || id <= 0) {
    throw new InvalidArgumentError(`conf change node id must be a positive integer, got ${id}`);
  }
}

function progressOf(progress: ReadonlyMap<NodeId, Progress>, id: NodeId): Progress {
  const pr = progress.get(id);
  if (pr === undefined) {
    throw new InvalidArgumentError(`no progress for member ${id}`);
  }
  return pr;
}

function symmetricDifferenceSize(a: ReadonlySet<NodeId>, b: ReadonlySet<NodeId>): number {
  let size = 0;
  for (const id of a) {
    if (!b.has(id)) size++;
  }
  for (const id of b) {
    if (!a.has(id)) size++;
  }
  return size;
}

/**
 * Checks that a config and its progress map agree (etcd checkInvariants, plus: voters are not
 * marked as learners, and no progress outlives its member). Applied to the input and to every
 * result. The empty config is allowed: bootstrap builds the first config from it.
 * @throws InvalidArgumentError naming the first violation.
 */
function checkInvariants(config: WorkingConfig, progress: ReadonlyMap<NodeId, Progress>): void {
  for (const ids of [config.incoming, config.outgoing, config.learners, config.learnersNext]) {
    for (const id of ids) {
      progressOf(progress, id);
    }
  }
  for (const id of [...config.incoming, ...config.outgoing]) {
    if (progressOf(progress, id).isLearner) {
      throw new InvalidArgumentError(`${id} is a voter but its progress is marked as learner`);
    }
  }
  // A staged learner was staged only because it is still an outgoing voter.
  for (const id of config.learnersNext) {
    if (!config.outgoing.has(id)) {
      throw new InvalidArgumentError(`${id} is in learnersNext but not an outgoing voter`);
    }
  }
  for (const id of config.learners) {
    if (config.incoming.has(id) || config.outgoing.has(id)) {
      throw new InvalidArgumentError(`${id} is both a learner and a voter`);
    }
    if (!progressOf(progress, id).isLearner) {
      throw new InvalidArgumentError(`${id} is a learner but its progress is not marked as one`);
    }
  }
  for (const id of progress.keys()) {
    if (
      !config.incoming.has(id) &&
      !config.outgoing.has(id) &&
      !config.learners.has(id) &&
      !config.learnersNext.has(id)
    ) {
      throw new InvalidArgumentError(`progress for ${id}, which is not a member`);
    }
  }
  if (!isJoint(config)) {
    if (config.learnersNext.size > 0) {
      throw new InvalidArgumentError("learnersNext must be empty outside a joint config");
    }
    if (config.autoLeave) {
      throw new InvalidArgumentError("autoLeave must be false outside a joint config");
    }
  }
}

function checkAndReturn(config: WorkingConfig, progress: Map<NodeId, Progress>): ChangeResult {
  checkInvariants(config, progress);
  return {
    config: {
      voters: { incoming: config.incoming, outgoing: config.outgoing },
      learners: config.learners,
      learnersNext: config.learnersNext,
      autoLeave: config.autoLeave,
    },
    progress,
  };
}

/** How to restore a config: the limits and log position new progress starts from. */
export interface RestoreOptions {
  /** The last log index: every member is probed from there. */
  readonly lastIndex: number;
  /** The inflight window of each member, in messages. */
  readonly maxInflightMessages: number;
  /** The inflight window of each member, in payload bytes; 0 = no byte limit. */
  readonly maxInflightBytes: number;
}

/**
 * Rebuilds a tracker config and progress from a ConfState (etcd confchange.Restore), starting
 * from an empty config. Every member gets a fresh progress: match 0, next = max(lastIndex, 1),
 * recentActive true.
 *
 * A joint ConfState is replayed as: add the outgoing voters one by one (so they form a plain
 * config), then enter the joint config with "remove every outgoing voter, add every incoming
 * voter, add every learner and every learnerNext as a learner"; the last step lands outgoing
 * voters in learnersNext, exactly as the original change did.
 * @throws InvalidArgumentError if the ConfState is not a valid configuration (e.g. learners
 *   without voters, a learner that is also a voter).
 */
export function restoreConfState(confState: ConfState, options: RestoreOptions): ChangeResult {
  checkConfState(confState);
  let current: ChangeResult = { config: emptyTrackerConfig(), progress: new Map() };
  const step = (fn: (changer: Changer) => ChangeResult): void => {
    current = fn(new Changer({ ...options, config: current.config, progress: current.progress }));
  };
  const add = (nodeId: NodeId): ConfChangeSingle => ({ type: ConfChangeType.AddNode, nodeId });
  const addLearner = (nodeId: NodeId): ConfChangeSingle => ({
    type: ConfChangeType.AddLearnerNode,
    nodeId,
  });
  const removeNode = (nodeId: NodeId): ConfChangeSingle => ({
    type: ConfChangeType.RemoveNode,
    nodeId,
  });

  const incoming = [
    ...confState.voters.map(add),
    ...confState.learners.map(addLearner),
    ...confState.learnersNext.map(addLearner),
  ];
  if (confState.votersOutgoing.length === 0) {
    for (const change of incoming) {
      step((changer) => changer.simple([change]));
    }
  } else {
    for (const id of confState.votersOutgoing) {
      step((changer) => changer.simple([add(id)]));
    }
    step((changer) =>
      changer.enterJoint(confState.autoLeave, [
        ...confState.votersOutgoing.map(removeNode),
        ...incoming,
      ]),
    );
  }
  return current;
}

/**
 * Refuses a malformed ConfState up front: replaying it as changes would otherwise silently
 * "repair" it (a voter listed as a learner too would just be demoted).
 */
function checkConfState(confState: ConfState): void {
  const lists: [string, readonly NodeId[]][] = [
    ["voters", confState.voters],
    ["learners", confState.learners],
    ["votersOutgoing", confState.votersOutgoing],
    ["learnersNext", confState.learnersNext],
  ];
  for (const [name, ids] of lists) {
    for (const id of ids) {
      checkNodeId(id);
    }
    if (new Set(ids).size !== ids.length) {
      throw new InvalidArgumentError(`ConfState.${name} lists a node twice: ${ids.join(",")}`);
    }
  }
  const voters = new Set(confState.voters);
  const outgoing = new Set(confState.votersOutgoing);
  for (const id of confState.learners) {
    if (voters.has(id) || outgoing.has(id)) {
      throw new InvalidArgumentError(`ConfState lists ${id} as both a learner and a voter`);
    }
  }
  for (const id of confState.learnersNext) {
    if (!outgoing.has(id) || voters.has(id)) {
      throw new InvalidArgumentError(
        `ConfState.learnersNext holds ${id}, which must be an outgoing voter and not an incoming one`,
      );
    }
  }
  if (outgoing.size === 0 && confState.autoLeave) {
    throw new InvalidArgumentError("ConfState.autoLeave is set outside a joint config");
  }
}
