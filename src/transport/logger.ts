/** The logger the transport writes to: structured lines with a message and fields. */
export interface TransportLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that drops everything (the default). */
export const SILENT_TRANSPORT_LOGGER: TransportLogger = Object.freeze({
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
});
