/**
 * The start commands' (`node start`, `agent start`) way of turning a bad setting found after
 * commander parsed the flags into a usage error: an InvalidArgumentError thrown while resolving
 * the configuration exits 64 with its message, as commander's own errors do.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { InvalidArgumentError } from "../../common/errors.js";

/** Runs `fn`; an InvalidArgumentError it throws is a usage error (exit 64), as commander's are. */
export function usage<T>(command: Command, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    return command.error(`error: ${error.message}`, { exitCode: 64, code: "blixard.usage" });
  }
}

/** {@link usage} for an async `fn`. */
export async function usageAsync<T>(command: Command, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    return command.error(`error: ${error.message}`, { exitCode: 64, code: "blixard.usage" });
  }
}

/**
 * True if `<dataDir>/raft` holds any file: the directory belongs to a server (a Raft member).
 * @throws the file system's error other than ENOENT.
 */
export async function hasRaftLog(dataDir: string): Promise<boolean> {
  try {
    return (await readdir(join(dataDir, "raft"))).length > 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}
