/**
 * A scripted QMP monitor for the migration tests: it answers each command from a handler (or
 * `{}`) and records every command with its arguments; and a clock whose timers fire at once.
 */
import type { Clock } from "../../../src/common/clock.js";
import type { QmpClient } from "../../../src/orchestrator/drivers/qmp.js";

/** A clock whose timers fire on the next turn, moving its time forward by their delay. */
export class InstantClock implements Clock {
  private nowMs = 0;
  now(): number {
    return this.nowMs;
  }
  setTimer(delayMs: number, callback: () => void): { cancel(): void } {
    let live = true;
    setImmediate(() => {
      if (!live) return;
      this.nowMs += delayMs;
      callback();
    });
    return { cancel: () => (live = false) };
  }
}

/** Answers one command from its arguments (throw: QEMU refuses it). */
export type Handler = (args: Record<string, unknown> | undefined) => unknown;

/** A monitor that answers from `handlers` and records every command with its arguments. */
export function scriptedQmp(handlers: Record<string, Handler>) {
  const calls: { command: string; args: Record<string, unknown> | undefined }[] = [];
  const qmp = {
    execute: (command: string, args?: Record<string, unknown>) => {
      calls.push({ command, args });
      const handler = handlers[command];
      if (handler === undefined) return Promise.resolve({});
      try {
        return Promise.resolve(handler(args));
      } catch (error) {
        return Promise.reject(error as Error);
      }
    },
  } as unknown as QmpClient;
  return { qmp, calls, names: () => calls.map((c) => c.command) };
}

/** Answers from `answers` in turn, repeating the last one. */
export function sequence(...answers: unknown[]): Handler {
  let next = 0;
  return () => answers[Math.min(next++, answers.length - 1)];
}
