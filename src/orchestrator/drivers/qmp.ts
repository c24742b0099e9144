/**
 * A client of the QEMU Machine Protocol over a unix socket: one JSON object per line each way.
 * The server speaks first (the greeting); the client must then negotiate with
 * `qmp_capabilities` before anything else. Commands carry an `id` that the reply echoes, so
 * several may be in flight; events (`SHUTDOWN`, `POWERDOWN`, …) arrive between replies at any
 * time.
 *
 * Failures are typed: the socket missing or refusing, or the connection closing with commands in
 * flight, is `UnavailableError`; no answer in time is `TimeoutError`; an abort is
 * `CancelledError`; a reply QEMU marks as an error is {@link QmpCommandError}; malformed JSON or
 * a message out of protocol closes the connection with `UnavailableError` (and an oversized line
 * with `TooLargeError`), since nothing after it can be trusted.
 */
import { createConnection, type Socket } from "node:net";
import type { Clock, TimerHandle } from "../../common/clock.js";
import {
  CancelledError,
  ConflictError,
  TimeoutError,
  TooLargeError,
  UnavailableError,
} from "../../common/errors.js";
import { DEFAULT_QMP_COMMAND_TIMEOUT_MS, MAX_QMP_MESSAGE_BYTES } from "./limits.js";

/** QEMU refused a command (an `error` reply): its class and description as QEMU gave them. */
export class QmpCommandError extends ConflictError {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly description: string,
  ) {
    super(`QEMU refused ${command}: ${errorClass}: ${description}`);
  }
}

/** The server's greeting. */
export interface QmpGreeting {
  /** The `version` object as sent (`{qemu: {major, minor, micro}, package}`). */
  readonly version: unknown;
  readonly capabilities: readonly string[];
}

/** An asynchronous event from QEMU. */
export interface QmpEvent {
  readonly event: string;
  readonly data: Readonly<Record<string, unknown>>;
  /** When QEMU emitted it, in µs since the epoch, or null if it sent none. */
  readonly timestampMicros: number | null;
}

/** How to connect. */
export interface QmpConnectOptions {
  readonly clock: Clock;
  /** For the connection, the greeting and the negotiation together. Default {@link DEFAULT_QMP_COMMAND_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** Aborts the connection attempt (`CancelledError`). */
  readonly signal?: AbortSignal;
  /** The default timeout of {@link QmpClient.execute}. Default {@link DEFAULT_QMP_COMMAND_TIMEOUT_MS}. */
  readonly commandTimeoutMs?: number;
  /** The longest message accepted, in bytes. Default {@link MAX_QMP_MESSAGE_BYTES}. */
  readonly maxMessageBytes?: number;
}

interface Pending {
  readonly command: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: TimerHandle;
}

/** A negotiated QMP connection. */
export class QmpClient {
  /** The server's greeting. */
  greeting: QmpGreeting = { version: null, capabilities: [] };
  /** Settles when the connection has closed, with the reason (never rejects). */
  readonly closed: Promise<Error>;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(event: QmpEvent) => void>();
  private nextId = 1;
  private buffer = "";
  private closeReason: Error | undefined;
  private resolveClosed!: (reason: Error) => void;
  private greeted = false;
  private onGreeting: ((error?: Error) => void) | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly path: string,
    private readonly options: QmpConnectOptions,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    socket.setEncoding("utf8");
    socket.on("data", (text: string) => this.receive(text));
    let socketError: Error | undefined;
    socket.on("error", (error) => (socketError = error));
    socket.on("close", () =>
      this.shutDown(
        socketError === undefined
          ? new UnavailableError(`the QMP connection to ${path} was closed by QEMU`)
          : new UnavailableError(`the QMP connection to ${path} failed: ${socketError.message}`, {
              cause: socketError,
            }),
      ),
    );
  }

  /**
   * Connects to the QMP socket at `path`, reads the greeting and negotiates capabilities.
   * @throws UnavailableError when the socket does not exist or refuses (`cause` holds the errno
   *   error: ENOENT, ECONNREFUSED — a QEMU still starting), or closes, or breaks the protocol.
   * @throws TimeoutError when all this takes longer than `timeoutMs`.
   * @throws CancelledError when `signal` aborts first.
   */
  static connect(path: string, options: QmpConnectOptions): Promise<QmpClient> {
    const { signal } = options;
    if (signal?.aborted === true) {
      return Promise.reject(new CancelledError(`connecting to QMP at ${path} was cancelled`));
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_QMP_COMMAND_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      const client = new QmpClient(socket, path, options);
      let connected = false;
      let settled = false;
      const settle = (error: Error | undefined): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        signal?.removeEventListener("abort", onAbort);
        if (error === undefined) {
          resolve(client);
          return;
        }
        client.shutDown(error);
        reject(error);
      };
      const timer = options.clock.setTimer(timeoutMs, () =>
        settle(
          new TimeoutError(
            `QMP at ${path} did not ${connected ? "greet and negotiate" : "accept the connection"} within ${timeoutMs} ms`,
          ),
        ),
      );
      const onAbort = (): void =>
        settle(new CancelledError(`connecting to QMP at ${path} was cancelled`));
      signal?.addEventListener("abort", onAbort, { once: true });
      socket.once("connect", () => (connected = true));
      socket.once("error", (error: NodeJS.ErrnoException) => {
        if (!connected) {
          settle(
            new UnavailableError(
              `cannot connect to QMP at ${path}: ${error.code ?? error.message}; is QEMU running with this socket?`,
              { cause: error },
            ),
          );
        }
      });
      client.onGreeting = (error) => {
        if (error !== undefined) {
          settle(error);
          return;
        }
        client.execute("qmp_capabilities", undefined, { timeoutMs }).then(
          () => settle(undefined),
          (e: unknown) => settle(e as Error),
        );
      };
      void client.closed.then((reason) => settle(reason));
    });
  }

  /** Whether the connection is still open. */
  get isOpen(): boolean {
    return this.closeReason === undefined;
  }

  /**
   * Runs `command` with `args` and resolves with its `return` value.
   * @throws QmpCommandError when QEMU answers with an error.
   * @throws TimeoutError when no answer comes within the timeout (the connection stays open; a
   *   late answer is ignored).
   * @throws UnavailableError when the connection is or becomes closed before the answer.
   */
  execute(
    command: string,
    args?: Readonly<Record<string, unknown>>,
    options?: { readonly timeoutMs?: number },
  ): Promise<unknown> {
    if (this.closeReason !== undefined) {
      return Promise.reject(
        new UnavailableError(`cannot send ${command}: ${this.closeReason.message}`, {
          cause: this.closeReason,
        }),
      );
    }
    const id = this.nextId++;
    const timeoutMs =
      options?.timeoutMs ?? this.options.commandTimeoutMs ?? DEFAULT_QMP_COMMAND_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const timer = this.options.clock.setTimer(timeoutMs, () => {
        this.pending.delete(id);
        reject(new TimeoutError(`QEMU did not answer ${command} within ${timeoutMs} ms`));
      });
      this.pending.set(id, { command, resolve, reject, timer });
      const message =
        args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  /** Calls `listener` for every event from now on; returns a function that unsubscribes. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Closes the connection; commands in flight fail with `UnavailableError`. */
  close(): void {
    this.shutDown(new UnavailableError(`the QMP connection to ${this.path} was closed by us`));
  }

  private receive(text: string): void {
    if (this.closeReason !== undefined) return;
    this.buffer += text;
    let newline: number;
    while ((newline = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line !== "") this.handle(line);
      if (this.closeReason !== undefined) return;
    }
    // UTF-16 length bounds the UTF-8 length from below; good enough to stop a runaway line.
    const limit = this.options.maxMessageBytes ?? MAX_QMP_MESSAGE_BYTES;
    if (this.buffer.length > limit) {
      this.shutDown(
        new TooLargeError(
          `QMP at ${this.path} sent a message longer than ${limit} bytes; closing the connection`,
        ),
      );
    }
  }

  private handle(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      this.protocolError(`malformed JSON ${JSON.stringify(line.slice(0, 80))}`);
      return;
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      this.protocolError(`a message that is not a JSON object: ${line.slice(0, 80)}`);
      return;
    }
    const fields = message as Record<string, unknown>;
    if (!this.greeted) {
      const qmp = fields["QMP"];
      if (typeof qmp !== "object" || qmp === null) {
        this.protocolError(`no greeting first but ${line.slice(0, 80)}`);
        return;
      }
      const { version, capabilities } = qmp as Record<string, unknown>;
      this.greeted = true;
      this.greeting = {
        version: version ?? null,
        capabilities: Array.isArray(capabilities)
          ? capabilities.filter((c): c is string => typeof c === "string")
          : [],
      };
      this.onGreeting?.();
      return;
    }
    if (typeof fields["event"] === "string") {
      this.dispatch(fields);
      return;
    }
    const id = fields["id"];
    // Replies to ids we no longer wait for (timed out) and id-less errors are dropped.
    if (typeof id !== "number") return;
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    pending.timer.cancel();
    if ("return" in fields) {
      pending.resolve(fields["return"]);
      return;
    }
    const error = fields["error"];
    if (typeof error === "object" && error !== null) {
      const { class: errorClass, desc } = error as Record<string, unknown>;
      pending.reject(
        new QmpCommandError(pending.command, String(errorClass ?? "Unknown"), String(desc ?? "")),
      );
      return;
    }
    this.protocolError(`a reply to ${pending.command} with neither return nor error`);
  }

  private dispatch(fields: Record<string, unknown>): void {
    const timestamp = fields["timestamp"] as Record<string, unknown> | undefined;
    const seconds = timestamp?.["seconds"];
    const micros = timestamp?.["microseconds"];
    const data = fields["data"];
    const event: QmpEvent = {
      event: fields["event"] as string,
      data: typeof data === "object" && data !== null ? (data as Record<string, unknown>) : {},
      timestampMicros:
        typeof seconds === "number" && typeof micros === "number"
          ? seconds * 1_000_000 + micros
          : null,
    };
    for (const listener of this.listeners) listener(event);
  }

  private protocolError(what: string): void {
    this.shutDown(
      new UnavailableError(
        `QMP at ${this.path} broke the protocol (${what}); closing the connection`,
      ),
    );
  }

  private shutDown(reason: Error): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.socket.destroy();
    if (!this.greeted) this.onGreeting?.(reason);
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.timer.cancel();
      pending.reject(
        reason instanceof UnavailableError || reason instanceof TooLargeError
          ? reason
          : new UnavailableError(`${pending.command} got no answer: ${reason.message}`, {
              cause: reason,
            }),
      );
    }
    this.resolveClosed(reason);
  }
}
