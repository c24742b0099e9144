/**
 * The data directory's lock: a `LOCK` file created exclusively, holding the owner's process id,
 * so two nodes never open one directory. A lock left by a process that no longer runs (it was
 * killed) is stale and taken over.
 */
import { UnavailableError } from "../common/errors.js";
import { hasErrorCode, joinPath, type FileSystem } from "./fs.js";

/** The lock file's name inside the data directory. */
export const LOCK_FILE_NAME = "LOCK";

/** A held lock. */
export interface DirectoryLock {
  /** Removes the lock file. Idempotent. */
  release(): Promise<void>;
}

async function readOwner(fs: FileSystem, path: string): Promise<number | undefined> {
  try {
    const text = new TextDecoder().decode(await fs.readFile(path)).trim();
    const pid = Number.parseInt(text, 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch (error) {
    if (hasErrorCode(error, "ENOENT")) return undefined;
    throw error;
  }
}

/**
 * Takes the lock of `dir`.
 * @throws UnavailableError "data directory … is in use by process N" if a live process holds it.
 */
export async function acquireDirectoryLock(fs: FileSystem, dir: string): Promise<DirectoryLock> {
  const path = joinPath(dir, LOCK_FILE_NAME);
  // Two attempts: the second follows the removal of a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await fs.open(path, "createExclusive");
      try {
        await handle.write(new TextEncoder().encode(`${fs.processId()}\n`), 0);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.syncDirectory(dir);
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          await fs.remove(path);
        },
      };
    } catch (error) {
      if (!hasErrorCode(error, "EEXIST")) throw error;
    }
    const owner = await readOwner(fs, path);
    // An unreadable lock (a crash between create and write) or a dead owner is stale.
    if (owner !== undefined && fs.isProcessAlive(owner)) {
      throw new UnavailableError(
        `data directory ${dir} is in use by process ${owner}; stop it or use another directory`,
      );
    }
    await fs.remove(path).catch((error: unknown) => {
      if (!hasErrorCode(error, "ENOENT")) throw error;
    });
  }
  throw new UnavailableError(`data directory ${dir} is being locked by another process; retry`);
}
