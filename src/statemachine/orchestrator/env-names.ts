/**
 * Environment variable names a task spec may not set. The node sets `PATH` itself, and the rest
 * change how a program is loaded or how a shell or interpreter starts, before the task's own code
 * runs: the dynamic loader's `LD_*` (e.g. `LD_PRELOAD`), glibc's variables that it ignores for
 * set-uid programs for the same reason, and the start-up hooks of shells and of Node.js. Refused
 * when the spec is read (`INVALID_ARGUMENT`), on every replica alike.
 *
 * Why it matters even though a task runs any command it likes: the node may start the task through
 * a helper that runs with more privilege than the task (it joins the task's cgroup, then drops to
 * the task user), and a loader variable would run code inside that helper.
 */

/** Names refused exactly. */
export const RESERVED_ENV_NAMES: ReadonlySet<string> = new Set([
  "PATH",
  "GCONV_PATH",
  "GETCONF_DIR",
  "GLIBC_TUNABLES",
  "HOSTALIASES",
  "LOCALDOMAIN",
  "LOCPATH",
  "MALLOC_TRACE",
  "NIS_PATH",
  "NLSPATH",
  "RESOLV_HOST_CONF",
  "RES_OPTIONS",
  "TZDIR",
  "NODE_OPTIONS",
  "BASH_ENV",
  "ENV",
  "SHELLOPTS",
  "BASHOPTS",
  "IFS",
]);

/** Name prefixes refused: the dynamic loader's variables. */
export const RESERVED_ENV_PREFIXES: readonly string[] = ["LD_"];

/** Why `name` may not be set by a spec, or undefined when it may. Throws nothing. */
export function reservedEnvReason(name: string): string | undefined {
  if (name === "PATH") return "PATH is set by the node (the operator's PATH), not by the task";
  if (RESERVED_ENV_PREFIXES.some((prefix) => name.startsWith(prefix))) {
    return `${name} would change how the dynamic loader starts programs`;
  }
  if (RESERVED_ENV_NAMES.has(name)) {
    return `${name} changes how programs, shells or interpreters start`;
  }
  return undefined;
}
