/**
 * The CLI's structured logger: one JSON object per line on stderr (`time`, `level`, `msg`, the
 * logger's base fields such as `nodeId`, then the event's fields). It satisfies the raft and
 * transport logger ports, so every layer of a node logs in the same shape.
 */

/** Log levels, least to most severe. */
export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;

/** A log level, or `silent` for none. */
export type CliLogLevel = (typeof LOG_LEVELS)[number];

/** Where lines go (stderr by default; tests may collect them). */
export type LineSink = (line: string) => void;

/** A structured JSON-lines logger. */
export class JsonLogger {
  readonly #threshold: number;
  readonly #base: Readonly<Record<string, unknown>>;
  readonly #sink: LineSink;
  /** Shared by a logger and its children: fields read at each line (e.g. raft term and role). */
  readonly #shared: { context?: () => Readonly<Record<string, unknown>> };

  /**
   * @param level the least severe level written.
   * @param base fields on every line (e.g. `{nodeId: 1}`).
   * @param sink where each line goes; default `process.stderr`.
   */
  constructor(
    level: CliLogLevel = "info",
    base: Readonly<Record<string, unknown>> = {},
    sink: LineSink = (line) => process.stderr.write(line),
    shared: { context?: () => Readonly<Record<string, unknown>> } = {},
  ) {
    this.#threshold = LOG_LEVELS.indexOf(level);
    this.#base = base;
    this.#sink = sink;
    this.#shared = shared;
  }

  /** A logger with the same level, sink and context, and more base fields. */
  child(fields: Readonly<Record<string, unknown>>): JsonLogger {
    return new JsonLogger(
      LOG_LEVELS[this.#threshold],
      { ...this.#base, ...fields },
      this.#sink,
      this.#shared,
    );
  }

  /**
   * Adds the fields `context` returns (read at each line) to every line of this logger and of
   * all loggers made from it with {@link child}, before and after this call. It must not throw.
   */
  setContext(context: () => Readonly<Record<string, unknown>>): void {
    this.#shared.context = context;
  }

  /** Logs at debug. */
  debug(message: string, fields?: Record<string, unknown>): void {
    this.#write("debug", message, fields);
  }

  /** Logs at info. */
  info(message: string, fields?: Record<string, unknown>): void {
    this.#write("info", message, fields);
  }

  /** Logs at warn. */
  warn(message: string, fields?: Record<string, unknown>): void {
    this.#write("warn", message, fields);
  }

  /** Logs at error. */
  error(message: string, fields?: Record<string, unknown>): void {
    this.#write("error", message, fields);
  }

  #write(level: Exclude<CliLogLevel, "silent">, msg: string, fields?: Record<string, unknown>) {
    if (LOG_LEVELS.indexOf(level) < this.#threshold) return;
    const context = this.#shared.context?.();
    const line = {
      time: new Date().toISOString(),
      level,
      msg,
      ...this.#base,
      ...context,
      ...fields,
    };
    this.#sink(`${JSON.stringify(line)}\n`);
  }
}
