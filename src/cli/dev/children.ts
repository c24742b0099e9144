/**
 * The processes of `blixard dev`: each node runs `blixard node start` (each agent
 * `blixard agent start`) under the same Node binary, with its stdout and stderr appended to
 * `<node dir>/node.log` (`<agent dir>/agent.log`).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { EXIT_WITH_PARENT_ENV } from "../node/exit-with-parent.js";

/** The `blixard` entry point that children run. */
export const BIN_PATH = fileURLToPath(new URL("../../../bin/blixard.js", import.meta.url));

/** One child node process. */
export interface NodeChild {
  readonly id: number;
  readonly process: ChildProcess;
  readonly logPath: string;
  /** Settles with the exit code (or the signal's name) when the process has exited. */
  readonly exited: Promise<number | string>;
  /** Whether the process has exited. */
  hasExited(): boolean;
}

/** Spawns `blixard node start <args>` for node `id`, logging to `<nodeDir>/node.log`. */
export function spawnNode(id: number, nodeDir: string, args: readonly string[]): NodeChild {
  return spawnChild(id, join(nodeDir, "node.log"), ["node", "start", ...args]);
}

/** Spawns `blixard agent start <args>` for node `id`, logging to `<agentDir>/agent.log`. */
export function spawnAgent(id: number, agentDir: string, args: readonly string[]): NodeChild {
  return spawnChild(id, join(agentDir, "agent.log"), ["agent", "start", ...args]);
}

function spawnChild(id: number, logPath: string, command: readonly string[]): NodeChild {
  const fd = openSync(logPath, "a");
  // stdin is a pipe nobody writes: it ends when this process dies, SIGKILL included, and the
  // child then stops (see exit-with-parent.ts).
  const child = spawn(process.execPath, [BIN_PATH, ...command], {
    stdio: ["pipe", fd, fd],
    env: { ...process.env, [EXIT_WITH_PARENT_ENV]: "1" },
  });
  closeSync(fd);
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      done = true;
      resolve(code ?? signal ?? "unknown");
    });
    child.once("error", () => {
      done = true;
      resolve("spawn failed");
    });
  });
  return { id, process: child, logPath, exited, hasExited: () => done };
}

/**
 * Stops children: SIGTERM to each that still runs, then SIGKILL to any still running after
 * `timeoutMs`. Resolves once all have exited.
 */
export async function stopChildren(
  children: readonly NodeChild[],
  timeoutMs: number,
): Promise<void> {
  for (const c of children) if (!c.hasExited()) c.process.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const all = Promise.all(children.map((c) => c.exited));
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  if ((await Promise.race([all, timedOut])) === "timeout") {
    for (const c of children) if (!c.hasExited()) c.process.kill("SIGKILL");
    await all;
  }
  clearTimeout(timer);
}

/** The last `lines` lines of a child's log, for an error message. */
export function logTail(child: NodeChild, lines = 10): string {
  try {
    return readFileSync(child.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
