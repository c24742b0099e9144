/**
 * `task logs --follow` on the node that runs the task: the output of its running attempt as it
 * is written (from the agent's {@link LiveOutputHub}), then how the task ended.
 *
 * Messages (see `log-stream.ts` for the wire format):
 * - `open` `{id, status, nodeId}`; `attempt` `{attempt}` when an attempt's output begins;
 * - `output` `{stream: "stdout"|"stderr", text}`: what the attempt wrote so far (up to the
 *   capture cap), then each new chunk as it is written;
 * - `end` `{status, nodeId, exitCode, final}` ends the stream. `final: true`: the task ended
 *   (a task that had already ended gets its captured result as `output` first).
 *   `final: false`: its next attempt was placed on another node; follow again (any node
 *   forwards there).
 *
 * It waits, with nothing polled, while the task is pending or assigned here but not started,
 * and between an attempt's end and the report of it being applied: each applied entry and each
 * attempt opened here looks again.
 */
import type { NodeId } from "../../raft/types.js";
import {
  isTerminal,
  type OrchestratorQueries,
  type Task,
} from "../../statemachine/orchestrator/index.js";
import type {
  LiveOutputHub,
  LiveOutputListener,
  OutputStream,
} from "../../orchestrator/drivers/live-output.js";
import type { LogSink, LogSource } from "./log-stream.js";

/** What following a task needs of the node. */
export interface TaskLogFollowOptions {
  readonly taskId: string;
  readonly nodeId: NodeId;
  readonly queries: OrchestratorQueries;
  /** Subscribes to "entries were applied"; returns the unsubscriber. */
  readonly onApplied: (listener: () => void) => () => void;
  /** This node's running attempts (absent: a node that runs no tasks). */
  readonly hub: LiveOutputHub | undefined;
}

/** The log source of one task; see the module comment. */
export function taskLogSource(options: TaskLogFollowOptions): LogSource {
  return (sink) => new TaskLogFollow(options, sink).start();
}

class TaskLogFollow implements LiveOutputListener {
  readonly #options: TaskLogFollowOptions;
  readonly #sink: LogSink;
  #following: { readonly attempt: number; readonly stop: () => void } | undefined;
  #attemptShown = 0;
  #streamedOutput = false;
  #decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };

  constructor(options: TaskLogFollowOptions, sink: LogSink) {
    this.#options = options;
    this.#sink = sink;
  }

  start(): () => void {
    const { hub, taskId } = this.#options;
    const unApplied = this.#options.onApplied(() => this.#look());
    const unOpened = hub?.onOpened((id) => {
      if (id === taskId) this.#look();
    });
    const task = this.#options.queries.task(taskId);
    this.#sink.send("open", {
      id: taskId,
      status: task?.status ?? null,
      nodeId: task?.nodeId ?? null,
    });
    this.#look();
    return () => {
      this.#following?.stop();
      this.#following = undefined;
      unApplied();
      unOpened?.();
    };
  }

  /** @inheritdoc */
  output(stream: OutputStream, chunk: Uint8Array): void {
    const text = this.#decoders[stream].decode(chunk, { stream: true });
    if (text.length === 0) return;
    this.#streamedOutput = true;
    this.#sink.send("output", { stream, text });
  }

  /** @inheritdoc */
  ended(): void {
    this.#following = undefined;
    for (const stream of ["stdout", "stderr"] as const) {
      const rest = this.#decoders[stream].decode();
      if (rest.length > 0) this.#sink.send("output", { stream, text: rest });
    }
    this.#decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    this.#look();
  }

  /** Attaches to a running attempt, ends the stream, or keeps waiting. */
  #look(): void {
    const sink = this.#sink;
    if (sink.closed || this.#following !== undefined) return;
    const { taskId, nodeId, hub, queries } = this.#options;
    const task = queries.task(taskId);
    if (task === undefined) {
      sink.end({ code: "NOT_FOUND", message: `task ${taskId} is gone` }, "error");
      return;
    }
    const attempt = hub?.runningAttempt(taskId);
    if (hub !== undefined && attempt !== undefined) {
      if (attempt !== this.#attemptShown) sink.send("attempt", { attempt });
      this.#attemptShown = attempt;
      const following = hub.follow(taskId, this);
      if (following !== undefined) {
        if (sink.closed) following.stop();
        else this.#following = following;
        return;
      }
    }
    if (isTerminal(task.status)) {
      if (!this.#streamedOutput) this.#sendResult(task);
      sink.end(endData(task, true));
      return;
    }
    if (task.nodeId !== null && task.nodeId !== nodeId) sink.end(endData(task, false));
    // Pending, assigned here and not started yet, or ended here and not reported yet: wait.
  }

  #sendResult(task: Task): void {
    const result = task.result;
    if (result === null) return;
    if (result.stdout !== "") this.#sink.send("output", { stream: "stdout", text: result.stdout });
    if (result.stderr !== "") this.#sink.send("output", { stream: "stderr", text: result.stderr });
  }
}

function endData(task: Task, final: boolean): Record<string, unknown> {
  return {
    status: task.status,
    nodeId: task.nodeId,
    exitCode: task.result?.exitCode ?? null,
    error: task.result?.error ?? "",
    final,
  };
}
