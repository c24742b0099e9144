/**
 * The events of the change feed: one applied change, with its topic, type and key, and its JSON
 * and binary watch bytes (each built on first use and kept, so 64 watchers of one event
 * serialize it once). A kv value is in
 * it once: as text when it is valid UTF-8, else as base64 (`schema/values.ts`).
 */
import { entryToEventJson } from "../convert.js";
import { kvEventBytes } from "./watch-binary.js";
import { settingsToJson, taskToJson, vmToJson, workerToJson } from "../orchestrator-convert.js";
import type { StateChange } from "../../statemachine/changes.js";
import type {
  OrchestratorSettings,
  Task,
  Vm,
  Worker,
} from "../../statemachine/orchestrator/types.js";

/** The topics of the event stream. */
export const TOPICS = ["kv", "task", "vm", "worker", "cluster"] as const;
/** One topic of the event stream. */
export type Topic = (typeof TOPICS)[number];

/** What an event carries, by kind (resolved when its entry was applied; immutable). */
export type EventSource =
  | { readonly kind: "kv.put"; readonly change: Extract<StateChange, { kind: "kv.put" }> }
  | { readonly kind: "kv.delete"; readonly key: string; readonly revision: number }
  | { readonly kind: "task"; readonly id: string; readonly task: Task | undefined }
  | { readonly kind: "vm"; readonly name: string; readonly vm: Vm | undefined }
  | { readonly kind: "worker"; readonly worker: Worker }
  | { readonly kind: "settings"; readonly settings: OrchestratorSettings }
  | { readonly kind: "acl"; readonly command: string };

/** Rough bytes an event holds in the history, for its byte bound (not exact; never below). */
const EVENT_OVERHEAD_BYTES = 160;
/** Entities are frozen objects shared with the model; this is their share of the bound. */
const ENTITY_BYTES = 1024;

/** One applied change. */
export class FeedEvent {
  readonly topic: Topic;
  /** `put`/`delete` (kv), `updated`/`removed` (entities), `settings`, `acl`. */
  readonly type: string;
  /** The key, task id, VM name or worker node id. */
  readonly key: string;
  /** kv only: the store revision of the change. */
  readonly revision: number;
  readonly source: EventSource;
  /** Approximate bytes held (see {@link EVENT_OVERHEAD_BYTES}). */
  readonly bytes: number;
  #json: string | undefined;
  #binary: Buffer | undefined;

  /** Builds the event of `source`. Throws nothing. */
  constructor(source: EventSource) {
    this.source = source;
    switch (source.kind) {
      case "kv.put":
        [this.topic, this.type, this.key] = ["kv", "put", source.change.key];
        this.revision = source.change.modRevision;
        this.bytes =
          EVENT_OVERHEAD_BYTES + 2 * source.change.key.length + source.change.value.length;
        return;
      case "kv.delete":
        [this.topic, this.type, this.key] = ["kv", "delete", source.key];
        this.revision = source.revision;
        this.bytes = EVENT_OVERHEAD_BYTES + 2 * source.key.length;
        return;
      case "task":
        [this.topic, this.key] = ["task", source.id];
        this.type = source.task === undefined ? "removed" : "updated";
        break;
      case "vm":
        [this.topic, this.key] = ["vm", source.name];
        this.type = source.vm === undefined ? "removed" : "updated";
        break;
      case "worker":
        [this.topic, this.type, this.key] = ["worker", "updated", String(source.worker.nodeId)];
        break;
      case "settings":
        [this.topic, this.type, this.key] = ["cluster", "settings", "settings"];
        break;
      case "acl":
        [this.topic, this.type, this.key] = ["cluster", "acl", source.command];
        break;
    }
    this.revision = 0;
    this.bytes = EVENT_OVERHEAD_BYTES + ENTITY_BYTES;
  }

  /** The event as one JSON object, built once. Throws nothing. */
  json(): string {
    this.#json ??= JSON.stringify({
      topic: this.topic,
      type: this.type,
      key: this.key,
      ...this.#payload(),
    });
    return this.#json;
  }

  /**
   * A kv event's bytes in the binary watch format (`common/watch-wire.ts`), built once; empty for
   * other topics. Throws nothing.
   */
  binary(): Buffer {
    this.#binary ??= kvEventBytes(this.source) ?? Buffer.alloc(0);
    return this.#binary;
  }

  #payload(): Record<string, unknown> {
    const source = this.source;
    switch (source.kind) {
      case "kv.put":
        return { kv: entryToEventJson(source.change) };
      case "kv.delete":
        return { kv: { key: source.key, modRevision: source.revision } };
      case "task":
        return source.task === undefined ? {} : { task: taskToJson(source.task) };
      case "vm":
        return source.vm === undefined ? {} : { vm: vmToJson(source.vm) };
      case "worker":
        return { worker: workerToJson(source.worker) };
      case "settings":
        return { settings: settingsToJson(source.settings) };
      case "acl":
        return { command: source.command };
    }
  }
}
