/**
 * The orchestrator model as it stood at a snapshot's capture, encoded a slice at a time while the
 * model keeps changing (private to the orchestrator folder; `OrchestratorState.captureSnapshot`
 * makes one). Its bytes are those of `encodeOrchestratorSnapshot` at the capture.
 *
 * Point in time: entities are frozen and replaced on change, never mutated, so the view holds
 * copies of the lists at the capture (one pointer per worker, task id, VM name and finished id)
 * and the live task and VM maps; the state hands the view an entry before its first replacement
 * or removal after the capture ({@link OrchestratorSnapshotView.preserveTask}, `preserveVm`), as
 * it stood then, and the view reads that one instead of the map's. Only entries the view has not
 * encoded yet are kept, so what it holds is bounded by the changes that land ahead of it.
 *
 * One thing changes without replacing an entry: the pending reason a queued item *follows* (see
 * `pending-queue.ts`), which settling a shape rewrites for all its items at once. So before a
 * shape is settled the state hands the view the shape's reason and explicit items as they were
 * ({@link OrchestratorSnapshotView.preserveShape}): O(its explicit items), what settling costs
 * anyway, once per shape and view.
 *
 * Size: the JSON's length is known only once encoded, and the enclosing snapshots put it first,
 * so the view encodes ahead into pieces of its own ({@link prepare}; a bounded number of entities
 * per call, since each is rebuilt by its strict reader), then copies them out ({@link writeSlice}).
 */
import type { ByteWriter } from "../codec/binary.js";
import { compareKeys } from "../kv/sorted-keys.js";
import type { SnapshotPart } from "../snapshot-encoding.js";
import { SnapshotJsonPieces } from "../snapshot-json-pieces.js";
import { readTask, readVm, readWorker } from "./entity-reader.js";
import { FieldReader } from "./field-reader.js";
import type { PendingQueue, ShapeQueue } from "./pending-queue.js";
import { readSettings } from "./spec-reader.js";
import type { TaskEntry, VmEntry } from "./state.js";
import type { OrchestratorSettings, Vm, Worker } from "./types.js";

/** Entities encoded per {@link OrchestratorSnapshotView.prepare} call at most (each is re-read strictly). */
export const ORCHESTRATOR_SNAPSHOT_ENTITIES_PER_SLICE = 64;

/** What `OrchestratorState.captureSnapshot` hands a view: the state at the capture. */
export interface OrchestratorCapture {
  readonly magicAndVersion: Uint8Array;
  readonly settings: OrchestratorSettings;
  readonly nextSeq: number;
  /** The workers, in no particular order (a copy the view owns). */
  readonly workers: Worker[];
  /** The live task map (read at each slice). */
  readonly tasks: ReadonlyMap<string, TaskEntry>;
  /** Task ids in order (a copy the view owns). */
  readonly taskIds: readonly string[];
  /** The live VM map (read at each slice). */
  readonly vms: ReadonlyMap<string, VmEntry>;
  /** VM names in order (a copy the view owns). */
  readonly vmNames: readonly string[];
  /** Finished task ids, oldest first (a copy the view owns). */
  readonly finished: readonly string[];
  /** The live placement queue, for the pending reasons items follow. */
  readonly queue: PendingQueue;
}

/** A shape's shared reason and explicit items as they were at the capture. */
interface ShapeAtCapture {
  readonly reason: string | undefined;
  readonly explicit: ReadonlySet<number>;
}

/** Where the encoding is, in the order of the JSON. */
const Stage = { Head: 0, Workers: 1, Tasks: 2, Vms: 3, Finished: 4, Done: 5 } as const;
type Stage = (typeof Stage)[keyof typeof Stage];

/** A queued VM: pending on no node (as `state.ts` defines it). */
function isQueuedVm(vm: Vm): boolean {
  return vm.nodeId === null && vm.status === "pending";
}

/** The orchestrator part of a captured snapshot; see the module comment. */
export class OrchestratorSnapshotView implements SnapshotPart {
  /** Undefined once released. */
  #capture: OrchestratorCapture | undefined;
  readonly #preservedTasks = new Map<string, TaskEntry>();
  readonly #preservedVms = new Map<string, VmEntry>();
  readonly #shapes = new Map<ShapeQueue, ShapeAtCapture>();
  #stage: Stage = Stage.Head;
  /** The position of the next worker, task or VM to encode in the current stage. */
  #next = 0;
  readonly #pieces: SnapshotJsonPieces;
  readonly #onRelease: (view: OrchestratorSnapshotView) => void;
  #released = false;

  /**
   * @param capture The state at the capture (see {@link OrchestratorCapture}).
   * @param onRelease Called once on release, so the state stops preserving entries for the view.
   */
  constructor(capture: OrchestratorCapture, onRelease: (view: OrchestratorSnapshotView) => void) {
    this.#capture = capture;
    this.#pieces = new SnapshotJsonPieces(capture.magicAndVersion);
    this.#onRelease = onRelease;
  }

  /**
   * Called by the state before it replaces or removes task `id`'s entry `previous` (undefined:
   * the task is new). Keeps the entry as the capture saw it if the view has not encoded it yet.
   */
  preserveTask(id: string, previous: TaskEntry | undefined): void {
    const capture = this.#capture;
    if (capture === undefined || previous === undefined || this.#stage > Stage.Tasks) return;
    if (this.#preservedTasks.has(id)) return;
    if (this.#stage === Stage.Tasks && this.#next > 0) {
      const lastWritten = capture.taskIds[this.#next - 1] as string;
      if (compareKeys(id, lastWritten) <= 0) return;
    }
    this.#preservedTasks.set(id, this.#taskAtCapture(previous));
  }

  /** As {@link preserveTask}, for VM `name`. */
  preserveVm(name: string, previous: VmEntry | undefined): void {
    const capture = this.#capture;
    if (capture === undefined || previous === undefined || this.#stage > Stage.Vms) return;
    if (this.#preservedVms.has(name)) return;
    if (this.#stage === Stage.Vms && this.#next > 0) {
      const lastWritten = capture.vmNames[this.#next - 1] as string;
      if (compareKeys(name, lastWritten) <= 0) return;
    }
    this.#preservedVms.set(name, this.#vmAtCapture(previous));
  }

  /** Called by the state before it settles `shape` (its reason and explicit items change). */
  preserveShape(shape: ShapeQueue): void {
    if (this.#capture === undefined || this.#stage > Stage.Vms || this.#shapes.has(shape)) return;
    this.#shapes.set(shape, { reason: shape.reason, explicit: new Set(shape.explicit) });
  }

  /** @inheritdoc */
  get prepared(): boolean {
    return this.#stage === Stage.Done;
  }

  /** @inheritdoc Encodes up to {@link ORCHESTRATOR_SNAPSHOT_ENTITIES_PER_SLICE} entities. */
  prepare(budgetBytes: number): number {
    return this.#pieces.pushSlice(
      () => this.#nextText(),
      () => this.#stage === Stage.Done,
      budgetBytes,
      ORCHESTRATOR_SNAPSHOT_ENTITIES_PER_SLICE,
    );
  }

  /** @inheritdoc */
  get sizeBytes(): number {
    return this.#pieces.sizeBytes;
  }

  /** @inheritdoc */
  writeSlice(writer: ByteWriter, budgetBytes: number): boolean {
    return this.#pieces.writeSlice(writer, budgetBytes);
  }

  /** @inheritdoc */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#preservedTasks.clear();
    this.#preservedVms.clear();
    this.#shapes.clear();
    this.#pieces.clear();
    this.#capture = undefined;
    this.#onRelease(this);
  }

  /** The next element of the JSON text (an entity with its separator, or the text between lists). */
  #nextText(): string {
    const capture = this.#capture as OrchestratorCapture;
    const position = this.#next++;
    const comma = position === 0 ? "" : ",";
    switch (this.#stage) {
      case Stage.Head: {
        // Sorted here rather than at the capture: up to MAX_WORKERS entries.
        capture.workers.sort((a, b) => a.nodeId - b.nodeId);
        const settings = JSON.stringify(
          readSettings(new FieldReader(capture.settings, "settings")),
        );
        return this.#advance(
          Stage.Workers,
          `{"settings":${settings},"nextSeq":${JSON.stringify(capture.nextSeq)},"workers":[`,
        );
      }
      case Stage.Workers: {
        const worker = capture.workers[position];
        if (worker === undefined) return this.#advance(Stage.Tasks, `],"tasks":[`);
        return (
          comma + JSON.stringify(readWorker(new FieldReader(worker, `worker ${worker.nodeId}`)))
        );
      }
      case Stage.Tasks: {
        const id = capture.taskIds[position];
        if (id === undefined) return this.#advance(Stage.Vms, `],"vms":[`);
        let entry = this.#preservedTasks.get(id);
        if (entry === undefined) entry = this.#taskAtCapture(capture.tasks.get(id) as TaskEntry);
        else this.#preservedTasks.delete(id);
        const task = readTask(new FieldReader(entry.task, `task ${id}`));
        return comma + JSON.stringify({ seq: entry.seq, task });
      }
      case Stage.Vms: {
        const name = capture.vmNames[position];
        if (name === undefined) return this.#advance(Stage.Finished, `],"finished":[`);
        let entry = this.#preservedVms.get(name);
        if (entry === undefined) entry = this.#vmAtCapture(capture.vms.get(name) as VmEntry);
        else this.#preservedVms.delete(name);
        const vm = readVm(new FieldReader(entry.vm, `VM ${name}`));
        return comma + JSON.stringify({ seq: entry.seq, vm });
      }
      case Stage.Finished: {
        const id = capture.finished[position];
        if (id === undefined) return this.#advance(Stage.Done, "]}");
        return comma + JSON.stringify(id);
      }
      case Stage.Done:
        return "";
    }
  }

  #advance(stage: Stage, text: string): string {
    this.#stage = stage;
    this.#next = 0;
    if (stage > Stage.Vms) this.#shapes.clear();
    return text;
  }

  /**
   * A task entry as the capture saw it, given its entry unchanged since: a queued task with the
   * reason it followed then (as `OrchestratorState.taskEntry` hands it out).
   */
  #taskAtCapture(entry: TaskEntry): TaskEntry {
    if (entry.task.status !== "pending") return entry;
    const reason = this.#followedAtCapture(entry.seq);
    if (reason === undefined || reason === entry.task.pendingReason) return entry;
    return { ...entry, task: { ...entry.task, pendingReason: reason } };
  }

  /** As {@link #taskAtCapture}, for a VM. */
  #vmAtCapture(entry: VmEntry): VmEntry {
    if (!isQueuedVm(entry.vm)) return entry;
    const reason = this.#followedAtCapture(entry.seq);
    if (reason === undefined || reason === entry.vm.pendingReason) return entry;
    return { ...entry, vm: { ...entry.vm, pendingReason: reason } };
  }

  /**
   * The reason queued item `seq` followed at the capture, or undefined if it held its own. An
   * item whose entry is unchanged since the capture is still queued in the same shape, and only
   * settling changed what it follows (then the shape is preserved).
   */
  #followedAtCapture(seq: number): string | undefined {
    const queue = (this.#capture as OrchestratorCapture).queue;
    const shape = queue.shapeOf(seq);
    if (shape === undefined) return undefined;
    const atCapture = this.#shapes.get(shape);
    if (atCapture === undefined) return queue.followedReason(seq);
    return atCapture.explicit.has(seq) ? undefined : atCapture.reason;
  }
}
