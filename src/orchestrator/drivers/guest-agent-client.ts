/**
 * The node's end of a guest agent channel (see `guest-agent-protocol.ts`): the unix socket QEMU
 * serves for the VM's virtio-serial port. The driver connects once QEMU's monitor answers and
 * keeps the connection for the run: while nobody is connected the guest's reads see end of file
 * and its agent polls, so holding it open lets the agent block on its read instead.
 *
 * Commands run one at a time, in the order asked. Each waits at most its timeout plus
 * {@link GUEST_EXEC_SLACK_MS} (the guest kills it at the timeout, and its answer needs a moment to
 * come back); past that, `TimeoutError`. A closed channel fails what waits with
 * `UnavailableError`.
 */
import { createConnection, type Socket } from "node:net";
import type { Clock } from "../../common/clock.js";
import {
  CancelledError,
  InvalidArgumentError,
  TimeoutError,
  UnavailableError,
} from "../../common/errors.js";
import {
  execRequestLine,
  GuestAgentReader,
  MAX_GUEST_EXEC_COMMAND_BYTES,
  type GuestExecResult,
} from "./guest-agent-protocol.js";

/** How long past its timeout a command's answer may take to arrive. */
export const GUEST_EXEC_SLACK_MS = 3000;

/** The longest timeout of one command in the guest. */
export const MAX_GUEST_EXEC_TIMEOUT_MS = 10 * 60 * 1000;

/** A command to run. */
export interface GuestExecRequest {
  readonly command: string;
  /** The guest kills the command after this (rounded up to whole seconds). */
  readonly timeoutMs: number;
  /** Gives up waiting (`CancelledError`); the command still runs to its end in the guest. */
  readonly signal?: AbortSignal;
}

/** A connection to one run's guest agent. */
export class GuestAgentClient {
  #nextId = 1;
  #queue: Promise<unknown> = Promise.resolve();
  #waiting: { id: number; resolve: (result: GuestExecResult) => void } | undefined;
  #closedReason: Error | undefined;
  readonly #onClose = new Set<(reason: Error) => void>();

  private constructor(
    private readonly socket: Socket,
    private readonly clock: Clock,
  ) {
    const reader = new GuestAgentReader((id, result) => {
      if (this.#waiting?.id === id) this.#waiting.resolve(result);
    });
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.#closedReason = new UnavailableError(
        "the guest agent's channel closed (the VM stopped or restarted); try again",
      );
      for (const listener of this.#onClose) listener(this.#closedReason);
    });
  }

  /**
   * Connects to the socket at `path`.
   * @throws UnavailableError when nothing listens there.
   */
  static connect(path: string, clock: Clock): Promise<GuestAgentClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      socket.once("connect", () => {
        socket.removeAllListeners("error");
        resolve(new GuestAgentClient(socket, clock));
      });
      socket.once("error", (error) =>
        reject(
          new UnavailableError(`cannot reach the guest agent socket ${path}: ${error.message}`, {
            cause: error,
          }),
        ),
      );
    });
  }

  /**
   * Runs `request.command` in the guest after the commands asked before it.
   * @throws InvalidArgumentError for an empty or oversized command or a bad timeout;
   *   TimeoutError when no answer came in time (is the guest the Blixard guest?);
   *   UnavailableError when the channel closed; CancelledError when the signal aborted.
   */
  exec(request: GuestExecRequest): Promise<GuestExecResult> {
    checkRequest(request);
    const run = this.#queue.then(() => this.#execNow(request));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Closes the connection; what waits fails with UnavailableError. */
  close(): void {
    this.socket.destroy();
  }

  #execNow(request: GuestExecRequest): Promise<GuestExecResult> {
    if (this.#closedReason !== undefined) return Promise.reject(this.#closedReason);
    if (request.signal?.aborted === true) {
      return Promise.reject(new CancelledError("the command was cancelled before it was sent"));
    }
    const id = this.#nextId++;
    const timeoutSeconds = Math.max(1, Math.ceil(request.timeoutMs / 1000));
    const waitMs = timeoutSeconds * 1000 + GUEST_EXEC_SLACK_MS;
    return new Promise<GuestExecResult>((resolve, reject) => {
      const done = (): void => {
        timer.cancel();
        this.#waiting = undefined;
        this.#onClose.delete(onClose);
        request.signal?.removeEventListener("abort", onAbort);
      };
      const onClose = (reason: Error): void => {
        done();
        reject(reason);
      };
      const onAbort = (): void => {
        done();
        reject(new CancelledError("stopped waiting for the command; it runs on in the guest"));
      };
      const timer = this.clock.setTimer(waitMs, () => {
        done();
        reject(
          new TimeoutError(
            `the guest agent did not answer within ${waitMs} ms; the guest must run the Blixard agent (guest/build-image.sh) and the command must end within its timeout`,
          ),
        );
      });
      this.#waiting = {
        id,
        resolve: (result) => {
          done();
          resolve(result);
        },
      };
      this.#onClose.add(onClose);
      request.signal?.addEventListener("abort", onAbort, { once: true });
      this.socket.write(execRequestLine(id, request.command, timeoutSeconds));
    });
  }
}

function checkRequest(request: GuestExecRequest): void {
  const bytes = Buffer.byteLength(request.command, "utf8");
  if (bytes === 0 || bytes > MAX_GUEST_EXEC_COMMAND_BYTES) {
    throw new InvalidArgumentError(
      `a command for the guest must be 1 to ${MAX_GUEST_EXEC_COMMAND_BYTES} bytes, got ${bytes}`,
    );
  }
  if (
    !Number.isInteger(request.timeoutMs) ||
    request.timeoutMs < 1 ||
    request.timeoutMs > MAX_GUEST_EXEC_TIMEOUT_MS
  ) {
    throw new InvalidArgumentError(
      `a command's timeout must be 1 to ${MAX_GUEST_EXEC_TIMEOUT_MS} ms, got ${request.timeoutMs}`,
    );
  }
}
