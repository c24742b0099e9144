/**
 * Processes started by `blixard dev` stop when `dev` itself goes away, however it went (a
 * SIGKILL gives it no chance to stop them, and orphaned nodes would hold their ports and data
 * directories). `dev` gives each child a pipe as stdin and sets {@link EXIT_WITH_PARENT_ENV};
 * the kernel closes the pipe when `dev` dies, the child reads end-of-file and stops as it does on
 * SIGTERM. Opt-in by the variable: a node run by systemd has `/dev/null` as stdin, whose
 * immediate end-of-file must not stop it.
 */

/** The variable `blixard dev` sets in its children. */
export const EXIT_WITH_PARENT_ENV = "BLIXARD_EXIT_WITH_PARENT";

/**
 * When the variable is set, calls `stop` once stdin ends (the parent is gone). Returns a function
 * that stops watching. Throws nothing.
 */
export function stopWhenParentExits(stop: () => void): () => void {
  if (process.env[EXIT_WITH_PARENT_ENV] !== "1") return () => undefined;
  const stdin = process.stdin;
  const onEnd = (): void => stop();
  stdin.once("end", onEnd);
  stdin.once("error", onEnd);
  // Reading keeps the pipe drained (dev never writes to it) and lets "end" arrive.
  stdin.resume();
  return () => {
    stdin.off("end", onEnd);
    stdin.off("error", onEnd);
    stdin.pause();
    stdin.unref?.();
  };
}
