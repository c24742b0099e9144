/**
 * Child processes that die with the node that started them.
 *
 * Task and VM processes lead their own session and process group (see `process-group.ts`), so
 * a node killed by SIGKILL or a crash leaves them running. For a QEMU that is a real problem:
 * the cluster marks the dead node's worker offline and boots the VM on another node, and two
 * copies of the guest then run (one of them unaccounted for, still holding its ports and its
 * disk). The process registry reaps such orphans only when the node starts again, which may be
 * never.
 *
 * Linux's parent-death signal (`prctl(PR_SET_PDEATHSIG)`) closes that gap: the kernel sends the
 * signal to the child the moment its parent exits, however it exits. It needs no privilege and
 * no cgroup (v1, v2 or none). Node cannot call `prctl`, so util-linux's `setpriv --pdeathsig
 * KILL` sets it and `exec`s the command; the setting survives `exec` (it is only cleared by a
 * set-user-ID binary or a change of credentials, which happen before `setpriv` runs). The
 * signal follows the thread that spawned the child: Node spawns on its main thread, which lives
 * as long as the process.
 *
 * One race is left: a node that dies between the fork and the `prctl` sends no signal. So
 * `setpriv` runs a guard shell, started after the `prctl`, that compares its parent with the
 * node's pid and exits 125 without running anything when they differ (the parent already died
 * and the child was adopted).
 */
import { findOnPath } from "../host/probe.js";

/** The program that sets the parent-death signal, looked up on the node's PATH. */
export const PARENT_DEATH_HELPER = "setpriv";

/** The guard's exit code when its parent died before it started (as `env` reports its own failures). */
export const PARENT_GONE_EXIT_CODE = 125;

let helper: Promise<string | null> | undefined;

/**
 * The absolute path of `setpriv` on the node's PATH, or null when it is not installed (then
 * children outlive a killed node until its next start reaps them). Looked up once. Throws nothing.
 */
export function findParentDeathHelper(): Promise<string | null> {
  helper ??= findOnPath(PARENT_DEATH_HELPER, process.env["PATH"] ?? "").catch(() => null);
  return helper;
}

/**
 * The program and arguments that run `sh -c script` (with `scriptArgs` as `"$@"`) as a child that
 * receives SIGKILL when process `parentPid` (the caller, which must spawn it) exits, and that
 * exits {@link PARENT_GONE_EXIT_CODE} without running `script` if `parentPid` is already gone
 * when it starts. Pure.
 * @param helperPath the `setpriv` binary (see {@link findParentDeathHelper}).
 */
export function dyingWithParent(
  helperPath: string,
  parentPid: number,
  script: string,
  scriptArgs: readonly string[],
): [string, string[]] {
  // `$PPID` is the shell's parent when it started, which is after setpriv's prctl.
  const guard = `[ "$PPID" = "$1" ] || exit ${PARENT_GONE_EXIT_CODE}; shift; ${script}`;
  return [
    helperPath,
    [
      "--pdeathsig",
      "KILL",
      "--",
      "/bin/sh",
      "-c",
      guard,
      "blixard-bound",
      String(parentPid),
      ...scriptArgs,
    ],
  ];
}
