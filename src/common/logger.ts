/**
 * The one logging port of every layer (core, transport, agent, runtime): structured lines with a
 * message and fields. Calls are synchronous and must not throw; the composition root decides
 * where lines go (`src/cli/log.ts` writes JSON lines).
 */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that drops everything (the default wherever a logger is optional). */
export const SILENT_LOGGER: Logger = Object.freeze({
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
});
