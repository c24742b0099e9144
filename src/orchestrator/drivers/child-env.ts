/**
 * The environment a task or VM process starts with: a minimal base, never the agent's own
 * environment (which may hold credentials or settings meant for the agent alone).
 */
import { homedir } from "node:os";

/** The PATH used when the agent itself has none. */
export const FALLBACK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The base environment: PATH and HOME, taken from the agent's process so that commands are found
 * where an operator expects them.
 */
export function minimalEnv(): Record<string, string> {
  return { PATH: process.env["PATH"] ?? FALLBACK_PATH, HOME: process.env["HOME"] ?? homedir() };
}
