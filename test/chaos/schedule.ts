/**
 * The fault schedule of a chaos run, a pure function of the seed: which fault comes next, its
 * variant, how long it lasts and the quiet time before it. Targets are selectors ("the leader",
 * "the k-th follower") resolved against the cluster when the step runs, so the same seed
 * replays the same schedule even though leaders differ between runs.
 */
import { SeededRandom } from "../../src/common/random.js";

/** The fault kinds of `--faults`. */
export const FAULT_KINDS = [
  "kill",
  "stop",
  "partition",
  "loss",
  "disk-full",
  "eio",
  "clock",
  "membership",
  "long-partition",
  "double",
] as const;
/** One fault kind. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Variants per kind. */
const VARIANTS: Record<FaultKind, readonly string[]> = {
  kill: ["leader", "random", "minority"],
  stop: ["leader", "random"],
  partition: ["isolate-one", "isolate-leader", "majority-minority", "bridge", "one-way"],
  loss: ["all-links"],
  "disk-full": ["leader", "follower"],
  eio: ["leader", "follower"],
  clock: ["forward", "backward"],
  membership: ["replace-follower"],
  // The heal targets: a 20 s partition, and a second fault right after a long one.
  "long-partition": ["isolate-one", "isolate-leader"],
  double: ["isolate-leader-then-new-leader", "isolate-follower-then-kill-other"],
};

/** How long a step's (first) fault lasts. */
function durationMs(kind: FaultKind, random: SeededRandom): number {
  if (kind === "eio") return 1000 + random.int(1000);
  if (kind === "long-partition") return 20_000;
  if (kind === "double") return 10_000 + random.int(10_001);
  return 1500 + random.int(3000);
}

/** One step: wait `quietMs`, inject the fault, keep it `durationMs`, heal, measure. */
export interface FaultStep {
  readonly index: number;
  readonly kind: FaultKind;
  readonly variant: string;
  readonly quietMs: number;
  readonly durationMs: number;
  /** Picks a node among candidates (an index taken modulo their count). */
  readonly pick: number;
  /** Loss percent, or clock jump in seconds. */
  readonly amount: number;
}

/** The schedule of `seed` over `kinds` (each kind once per round, rounds shuffled). */
export function makeSchedule(seed: number, kinds: readonly FaultKind[], steps = 500): FaultStep[] {
  const random = new SeededRandom(seed);
  const schedule: FaultStep[] = [];
  while (schedule.length < steps) {
    const round = [...kinds];
    for (let i = round.length - 1; i > 0; i--) {
      const j = random.int(i + 1);
      [round[i], round[j]] = [round[j] as FaultKind, round[i] as FaultKind];
    }
    for (const kind of round) {
      const variants = VARIANTS[kind];
      schedule.push({
        index: schedule.length,
        kind,
        variant: variants[random.int(variants.length)] as string,
        quietMs: 500 + random.int(1000),
        durationMs: durationMs(kind, random),
        pick: random.int(1000),
        amount: kind === "loss" ? 20 + random.int(30) : 2 + random.int(8),
      });
    }
  }
  return schedule.slice(0, steps);
}

/** Parses `--faults a,b,c`. @throws Error naming an unknown kind. */
export function parseFaults(text: string): FaultKind[] {
  const kinds = text
    .split(",")
    .map((k) => k.trim())
    .filter((k) => k !== "");
  for (const kind of kinds) {
    if (!(FAULT_KINDS as readonly string[]).includes(kind)) {
      throw new Error(`unknown fault kind ${kind}; known: ${FAULT_KINDS.join(", ")}`);
    }
  }
  if (kinds.length === 0) throw new Error("--faults needs at least one kind");
  return kinds as FaultKind[];
}

/** One line per step, for failure reports. */
export function describeStep(step: FaultStep): string {
  return `#${step.index} ${step.kind}/${step.variant} after ${step.quietMs} ms quiet, for ${step.durationMs} ms (pick ${step.pick}, amount ${step.amount})`;
}
