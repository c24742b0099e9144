/**
 * Helpers for the driver tests: temporary directories, whether a process is still alive (a zombie
 * is not: in some containers nothing reaps orphans), and waiting on a condition with a deadline.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Clock } from "../../../src/common/clock.js";

/** The real clock for tests that run real processes. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimer: (delayMs, callback) => {
    const timer = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(timer) };
  },
};

/** A fresh temporary directory and a function that removes it. */
export function makeTempDir(prefix: string): { dir: string; remove: () => void } {
  // Short prefixes keep unix socket paths under their 107-byte limit.
  const dir = mkdtempSync(join(tmpdir(), `bx-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Whether `pid` is a live process: it exists and is not a zombie waiting to be reaped. */
export function isAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  // Field 3, after the command name in parentheses (which may itself hold spaces and parens).
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X";
}

/** Polls `condition` every 10 ms until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The text of a file, or "" when it does not exist. */
export function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** A clock that moves only when told: timers fire in order from {@link ManualClock.advance}. */
export class ManualClock implements Clock {
  private nowMs = 0;
  private readonly timers: {
    atMs: number;
    delayMs: number;
    callback: () => void;
    live: boolean;
  }[] = [];

  now(): number {
    return this.nowMs;
  }

  setTimer(delayMs: number, callback: () => void): { cancel(): void } {
    const timer = { atMs: this.nowMs + delayMs, delayMs, callback, live: true };
    this.timers.push(timer);
    return { cancel: () => (timer.live = false) };
  }

  /** The delays of the timers that have neither fired nor been cancelled. */
  pendingDelays(): number[] {
    return this.timers.filter((t) => t.live).map((t) => t.delayMs);
  }

  /** Moves time forward by `ms`, firing every timer that comes due, earliest first. */
  advance(ms: number): void {
    const target = this.nowMs + ms;
    for (;;) {
      const due = this.timers
        .filter((t) => t.live && t.atMs <= target)
        .sort((a, b) => a.atMs - b.atMs)[0];
      if (due === undefined) break;
      due.live = false;
      this.nowMs = due.atMs;
      due.callback();
    }
    this.nowMs = target;
  }
}

/** The pid a script wrote into `path` (`echo $! > path`); throws unless it is a whole pid. */
export function readPid(path: string): number {
  const text = readOrEmpty(path);
  if (!/^\d+\n$/.test(text)) throw new Error(`${path} holds no pid yet: ${JSON.stringify(text)}`);
  return Number(text);
}

/**
 * Writes `<dir>/fake-qemu`, a wrapper that runs `fake-qemu.mjs` under this Node (the driver runs
 * a binary with arguments), and returns its path.
 */
export function writeFakeQemu(dir: string): string {
  const binary = join(dir, "fake-qemu");
  const script = fileURLToPath(new URL("./fake-qemu.mjs", import.meta.url));
  writeFileSync(binary, `#!/bin/sh\nexec '${process.execPath}' '${script}' "$@"\n`);
  chmodSync(binary, 0o755);
  return binary;
}
