/**
 * Followed logs as async iterables: `GET /v1/tasks/{id}/logs?follow=true` and
 * `GET /v1/vms/{name}/logs?follow=true` (Server-Sent Events from the node that runs the task or
 * VM; any node forwards there). They reconnect by themselves when the connection drops or the
 * work moves to another node:
 * - a task's output is counted per attempt, and what was already delivered of an attempt is
 *   skipped when it is replayed after a reconnect; the iterable ends after the task ended;
 * - a VM's log resumes at its end after a reconnect (lines written during the gap are not
 *   replayed), announces a move to another node, and ends when the VM is deleted.
 */
import { NotFoundError } from "../common/errors.js";
import { sseMessages, type SseMessage } from "./sse.js";
import { reconnectable, sleepUnlessAborted, type StreamTransport } from "./streams.js";

/** One message of a followed task log. */
export type TaskLogEvent =
  | {
      readonly type: "output";
      readonly stream: "stdout" | "stderr";
      readonly text: string;
    }
  /** An attempt's output begins (attempts are numbered from 1). */
  | { readonly type: "attempt"; readonly attempt: number }
  /** The task ended; the last message. */
  | {
      readonly type: "end";
      readonly status: string;
      readonly exitCode: number | null;
      readonly error: string;
      readonly nodeId: number | null;
    };

/** One message of a followed VM log. */
export type VmLogEvent =
  | { readonly type: "output"; readonly text: string }
  /** The log file was rotated (what follows is the new file's). */
  | { readonly type: "rotated" }
  /** The VM now runs on node `nodeId`; its log continues from there. */
  | { readonly type: "moved"; readonly nodeId: number }
  /** The VM was deleted; the last message. */
  | { readonly type: "deleted" };

/** Options of the followed logs. */
export interface FollowOptions {
  /** Stops following (the iterable then ends without an error). */
  readonly signal?: AbortSignal;
}

/** The longest wait between reconnects. */
const MAX_RECONNECT_DELAY_MS = 2_000;

/**
 * Yields the SSE messages of `path(attemptNumber)` across reconnects until `handle` says the
 * stream is over (true). Reconnects after transient failures, with backoff across endpoints.
 */
async function* following(
  transport: StreamTransport,
  signal: AbortSignal | undefined,
  path: () => string,
): AsyncGenerator<SseMessage, void, boolean | undefined> {
  const aborted = signal ?? new AbortController().signal;
  let endpointIndex = 0;
  let failures = 0;
  while (!aborted.aborted) {
    const endpoint = transport.endpoints[endpointIndex % transport.endpoints.length] as URL;
    try {
      for await (const message of sseMessages(endpoint, path(), {
        headers: transport.headers,
        signal: aborted,
        httpsAgent: transport.httpsAgent,
        connectTimeoutMs: transport.connectTimeoutMs,
      })) {
        failures = 0;
        const done = yield message;
        if (done === true) return;
      }
      // The node ended the stream (a move): follow again at once, on the same endpoint.
      continue;
    } catch (error) {
      if (aborted.aborted) return;
      if (!reconnectable(error)) throw error;
    }
    endpointIndex++;
    failures++;
    const delayMs = Math.min(MAX_RECONNECT_DELAY_MS, transport.backoffMs * 2 ** (failures - 1));
    await sleepUnlessAborted(delayMs * (0.5 + Math.random() / 2), aborted);
  }
}

/** Task `id`'s output as it is written, then its end; see the module comment. */
export async function* followTaskLog(
  transport: StreamTransport,
  id: string,
  options: FollowOptions = {},
): AsyncGenerator<TaskLogEvent> {
  let attempt = 0;
  // Characters of each stream already delivered for `attempt`, and still to skip on a replay.
  const delivered = { stdout: 0, stderr: 0 };
  const toSkip = { stdout: 0, stderr: 0 };
  const messages = following(
    transport,
    options.signal,
    () => `/v1/tasks/${encodeURIComponent(id)}/logs?follow=true`,
  );
  let next = await messages.next();
  while (next.done !== true) {
    const message = next.value;
    const data = JSON.parse(message.data) as Record<string, unknown>;
    let over = false;
    if (message.event === "open") {
      // A new connection replays the current attempt's output from its start.
      toSkip.stdout = delivered.stdout;
      toSkip.stderr = delivered.stderr;
    } else if (message.event === "attempt") {
      const number = Number(data["attempt"]);
      if (number !== attempt) {
        attempt = number;
        delivered.stdout = delivered.stderr = toSkip.stdout = toSkip.stderr = 0;
        yield { type: "attempt", attempt };
      }
    } else if (message.event === "output") {
      const stream = data["stream"] === "stderr" ? "stderr" : "stdout";
      let text = String(data["text"]);
      const skip = Math.min(toSkip[stream], text.length);
      toSkip[stream] -= skip;
      text = text.slice(skip);
      if (text.length > 0) {
        delivered[stream] += text.length;
        yield { type: "output", stream, text };
      }
    } else if (message.event === "end" && data["final"] === true) {
      yield {
        type: "end",
        status: String(data["status"]),
        exitCode: typeof data["exitCode"] === "number" ? data["exitCode"] : null,
        error: String(data["error"] ?? ""),
        nodeId: typeof data["nodeId"] === "number" ? data["nodeId"] : null,
      };
      over = true;
    } else if (message.event === "error" && data["code"] === "NOT_FOUND") {
      throw new NotFoundError(String(data["message"]));
    }
    next = await messages.next(over);
  }
}

/** VM `name`'s console log: the last `tail` lines, then what is written; see the module comment. */
export async function* followVmLog(
  transport: StreamTransport,
  name: string,
  options: FollowOptions & { readonly tail?: number } = {},
): AsyncGenerator<VmLogEvent> {
  let connections = 0;
  const messages = following(transport, options.signal, () => {
    // The tail only once: a reconnect goes on from the log's end.
    const tail = connections++ === 0 ? (options.tail ?? 100) : 0;
    return `/v1/vms/${encodeURIComponent(name)}/logs?follow=true&tail=${tail}`;
  });
  let next = await messages.next();
  while (next.done !== true) {
    const message = next.value;
    const data = JSON.parse(message.data) as Record<string, unknown>;
    let over = false;
    if (message.event === "output") yield { type: "output", text: String(data["text"]) };
    else if (message.event === "rotated") yield { type: "rotated" };
    else if (message.event === "end") {
      if (data["reason"] === "deleted") {
        yield { type: "deleted" };
        over = true;
      } else yield { type: "moved", nodeId: Number(data["nodeId"]) };
    }
    next = await messages.next(over);
  }
}
