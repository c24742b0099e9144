/**
 * The output of the task attempts running on this node, as it is written, for `task logs
 * --follow`: the agent opens an attempt here, the task runner pushes every chunk of stdout and
 * stderr, and followers get what was kept so far (up to the capture cap, like the reported
 * result) and then every new chunk the moment it is pushed. Nothing is polled.
 */
/** Which of a task's streams a chunk came from. */
export type OutputStream = "stdout" | "stderr";

/** What a follower of one attempt is told. */
export interface LiveOutputListener {
  /** A chunk of output, in the order written (bytes; the follower decodes). */
  output(stream: OutputStream, chunk: Uint8Array): void;
  /** The attempt ended; nothing more follows. */
  ended(): void;
}

/** The writing end of one attempt, held by the agent while the attempt runs. */
export interface LiveAttempt {
  /** Takes the next chunk of `stream`. */
  push(stream: OutputStream, chunk: Uint8Array): void;
  /** The attempt ended: followers are told and the kept output is dropped. Idempotent. */
  end(): void;
}

interface Attempt {
  readonly attempt: number;
  /** Bytes kept of stdout and stderr. */
  readonly keptBytes: { stdout: number; stderr: number };
  /** Every chunk kept so far, in order, with its stream (for a new follower's replay). */
  readonly kept: { stream: OutputStream; chunk: Uint8Array }[];
  readonly listeners: Set<LiveOutputListener>;
}

/** The running attempts of this node, by task id. */
export class LiveOutputHub {
  readonly #attempts = new Map<string, Attempt>();
  readonly #opened = new Set<(taskId: string) => void>();

  /** @param capBytes output kept per stream for followers that come late (as the result's cap). */
  constructor(private readonly capBytes: number) {}

  /**
   * Starts attempt `attempt` of task `taskId`; a previous attempt still open is ended first.
   * Throws nothing.
   */
  open(taskId: string, attempt: number): LiveAttempt {
    this.#attempts.get(taskId)?.listeners.forEach((listener) => listener.ended());
    const entry: Attempt = {
      attempt,
      keptBytes: { stdout: 0, stderr: 0 },
      kept: [],
      listeners: new Set(),
    };
    this.#attempts.set(taskId, entry);
    for (const listener of this.#opened) listener(taskId);
    let ended = false;
    return {
      push: (stream, chunk) => {
        if (ended) return;
        const keptBytes = Math.min(chunk.length, this.capBytes - entry.keptBytes[stream]);
        // The same bytes the result keeps, for a late follower's replay. Copied: a view could
        // hold a much larger pooled read buffer alive; a copy is bounded by the cap.
        if (keptBytes > 0) {
          entry.keptBytes[stream] += keptBytes;
          entry.kept.push({ stream, chunk: chunk.slice(0, keptBytes) });
        }
        for (const listener of entry.listeners) listener.output(stream, chunk);
      },
      end: () => {
        if (ended) return;
        ended = true;
        if (this.#attempts.get(taskId) === entry) this.#attempts.delete(taskId);
        for (const listener of entry.listeners) listener.ended();
        entry.listeners.clear();
      },
    };
  }

  /**
   * Follows the running attempt of `taskId`: `listener` first gets the output kept so far, then
   * each new chunk, then `ended`. Returns the attempt number and the function that stops
   * following, or undefined when no attempt of the task runs here. Throws nothing.
   */
  follow(
    taskId: string,
    listener: LiveOutputListener,
  ): { readonly attempt: number; readonly stop: () => void } | undefined {
    const entry = this.#attempts.get(taskId);
    if (entry === undefined) return undefined;
    for (const { stream, chunk } of entry.kept) listener.output(stream, chunk);
    entry.listeners.add(listener);
    return { attempt: entry.attempt, stop: () => entry.listeners.delete(listener) };
  }

  /** The number of the attempt of `taskId` running here, or undefined. */
  runningAttempt(taskId: string): number | undefined {
    return this.#attempts.get(taskId)?.attempt;
  }

  /** Calls `listener` with the task id each time an attempt opens; returns the unsubscriber. */
  onOpened(listener: (taskId: string) => void): () => void {
    this.#opened.add(listener);
    return () => this.#opened.delete(listener);
  }
}
