/**
 * The data directory is the node's alone: mode 0700 for it and every directory in it, 0600 for
 * every file (the raft log and snapshots hold every value of the cluster, secrets included).
 * Files are created with these modes (and the node runs with umask 077, so nothing it creates
 * is readable by others); {@link tightenDataDir} fixes a directory created before that.
 */
import { chmod, lstat, mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";

/** Mode of the data directory and of every directory in it. */
export const DATA_DIR_MODE = 0o700;

/** Mode of every file in the data directory. */
export const DATA_FILE_MODE = 0o600;

/**
 * Creates `dataDir` (0700) if missing, then sets 0700 on it and every directory under it and
 * 0600 on every regular file, not following symbolic links. Returns how many modes it changed.
 */
export async function tightenDataDir(dataDir: string): Promise<number> {
  await mkdir(dataDir, { recursive: true, mode: DATA_DIR_MODE });
  let changed = 0;
  const visit = async (path: string): Promise<void> => {
    const info = await lstat(path);
    if (info.isSymbolicLink()) return;
    const wanted = info.isDirectory() ? DATA_DIR_MODE : info.isFile() ? DATA_FILE_MODE : undefined;
    if (wanted !== undefined && (info.mode & 0o777) !== wanted) {
      await chmod(path, wanted);
      changed++;
    }
    if (info.isDirectory()) {
      for (const name of await readdir(path)) await visit(join(path, name));
    }
  };
  await visit(dataDir);
  return changed;
}
