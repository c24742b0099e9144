/**
 * The user tasks run as. A node running as root runs them as `--task-user` (default `nobody`),
 * resolved from `/etc/passwd` at start; a node running as another user cannot switch users, so
 * its tasks run as that user (the documented fallback).
 *
 * Only `/etc/passwd` is read (no NSS: a user known only to LDAP or sssd is not found); a numeric
 * `UID` or `UID:GID` is taken as is.
 */
import { readFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { InvalidArgumentError } from "../../common/errors.js";

/** The default task user of a node running as root. */
export const DEFAULT_TASK_USER = "nobody";

/** A user to run processes as. */
export interface TaskUser {
  /** Its name (for `USER` and `LOGNAME`), or the number given. */
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /**
   * Whether processes must switch to it (`uid`/`gid` on spawn): true when the node runs as root
   * and the user is not root.
   */
  readonly switches: boolean;
}

const ID_PATTERN = /^(\d+)(?::(\d+))?$/;

/**
 * Finds `name` (a user name, `UID` or `UID:GID`) in the text of a passwd file. Pure.
 * @throws InvalidArgumentError when it is not there or the entry is malformed.
 */
export function findPasswdUser(name: string, passwdText: string): Omit<TaskUser, "switches"> {
  const numeric = ID_PATTERN.exec(name);
  for (const line of passwdText.split("\n")) {
    const fields = line.split(":");
    if (fields.length < 4 || line.startsWith("#")) continue;
    const [entryName, , uidText, gidText] = fields as [string, string, string, string];
    const uid = Number(uidText);
    const gid = Number(gidText);
    if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid) || uidText === "") continue;
    if (entryName === name || (numeric !== null && numeric[2] === undefined && uidText === name)) {
      return { name: entryName, uid, gid };
    }
  }
  if (numeric !== null) {
    const uid = Number(numeric[1]);
    return { name, uid, gid: numeric[2] === undefined ? uid : Number(numeric[2]) };
  }
  throw new InvalidArgumentError(
    `task user "${name}" is not in /etc/passwd: create it, or give --task-user an existing user or UID:GID`,
  );
}

/**
 * The user this node's tasks run as. As root: `requested` (default `nobody`) resolved through
 * `passwdPath`. Otherwise: the node's own user, whatever was requested.
 * @throws InvalidArgumentError when the requested user cannot be resolved (root only).
 */
export async function resolveTaskUser(options: {
  readonly requested?: string;
  readonly passwdPath?: string;
  /** The node's uid (default `process.getuid()`); a test may pretend. */
  readonly nodeUid?: number;
}): Promise<TaskUser> {
  const nodeUid = options.nodeUid ?? process.getuid?.() ?? -1;
  if (nodeUid !== 0) {
    const self = userInfo();
    return { name: self.username, uid: self.uid, gid: self.gid, switches: false };
  }
  const requested = options.requested ?? DEFAULT_TASK_USER;
  let text: string;
  try {
    text = await readFile(options.passwdPath ?? "/etc/passwd", "utf8");
  } catch (error) {
    text = "";
    if (ID_PATTERN.exec(requested) === null) {
      throw new InvalidArgumentError(
        `cannot read ${options.passwdPath ?? "/etc/passwd"} to find task user "${requested}": ${(error as Error).message}`,
      );
    }
  }
  const user = findPasswdUser(requested, text);
  return { ...user, switches: user.uid !== 0 };
}
