/**
 * What really runs on the simulated machines: every task attempt and VM run the simulated
 * drivers start is a "process" here until it ends, is killed, or its machine crashes. The agent's
 * own bookkeeping can be wrong (that is what the checkers look for); this table is the ground
 * truth the end-of-run checks compare the model with.
 */
import type { NodeId } from "../../raft/types.js";

/** One simulated process. */
export interface SimProcess {
  readonly kind: "task" | "vm";
  /** The task id or the VM name. */
  readonly name: string;
  readonly nodeId: NodeId;
  /** The incarnation of the node's agent that started it. */
  readonly incarnation: number;
  /** The task attempt it runs (0 for a VM). */
  readonly attempt: number;
  readonly startedAtMs: number;
}

/** Counters of the process table. */
export interface ProcessStats {
  started: number;
  /** Processes that died with their machine. */
  killedByCrash: number;
}

/** Every simulated process of a run. */
export class SimProcessTable {
  readonly stats: ProcessStats = { started: 0, killedByCrash: 0 };
  readonly #running = new Set<SimProcess>();

  /** Records a process that started. */
  start(process: SimProcess): SimProcess {
    this.stats.started++;
    this.#running.add(process);
    return process;
  }

  /** Records that a process ended (no-op if it already had). */
  end(process: SimProcess): void {
    this.#running.delete(process);
  }

  /** The machine of `nodeId` crashed: every process on it is gone. */
  killNode(nodeId: NodeId): void {
    for (const process of this.#running) {
      if (process.nodeId !== nodeId) continue;
      this.#running.delete(process);
      this.stats.killedByCrash++;
    }
  }

  /** True while `process` runs. */
  isRunning(process: SimProcess): boolean {
    return this.#running.has(process);
  }

  /** The processes running now, in the order they started. */
  running(): SimProcess[] {
    return [...this.#running];
  }
}
