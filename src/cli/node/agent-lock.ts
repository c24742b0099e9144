/**
 * One agent per data directory: two would each kill the other's processes as leftovers of a
 * previous life (see the process registry). `<data-dir>/agent.lock` holds the pid of the agent
 * that runs; a lock whose pid is gone (the agent was killed) is taken over.
 */
import { open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { UnavailableError } from "../../common/errors.js";

/** The lock file inside the data directory. */
export const AGENT_LOCK_FILE = "agent.lock";

/** A held lock. */
export interface AgentLock {
  /** Removes the lock file. Throws nothing. */
  release(): Promise<void>;
}

/**
 * Takes the data directory's agent lock.
 * @throws UnavailableError if a live process holds it.
 */
export async function acquireAgentLock(dataDir: string): Promise<AgentLock> {
  const path = join(dataDir, AGENT_LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, "wx", 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return { release: () => rm(path, { force: true }).catch(() => undefined) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = Number((await readFile(path, "utf8").catch(() => "")).trim());
    if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
      throw new UnavailableError(
        `another agent (pid ${holder}) runs on ${dataDir}; stop it or give this one another --data-dir`,
      );
    }
    await rm(path, { force: true });
  }
  throw new UnavailableError(`could not take the agent lock ${path}; retry`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
