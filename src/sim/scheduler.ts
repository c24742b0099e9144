/**
 * The simulator's discrete-event scheduler: virtual time in milliseconds, events ordered by
 * (time, sequence), and the promise continuations each event starts run to completion before
 * the next event. Nothing here reads the real clock or uses real timers, so a run is a pure
 * function of its seed.
 */
import type { Clock, TimerHandle } from "../node/ports.js";

/** A scheduled event that can be cancelled. */
export interface ScheduledEvent extends TimerHandle {
  readonly atMs: number;
}

interface QueuedEvent {
  readonly atMs: number;
  readonly sequence: number;
  readonly run: () => void;
  cancelled: boolean;
}

/** How many microtask turns to let pass after each event: deeper chains finish on the next. */
const MICROTASK_DRAIN_TURNS = 64;

/** Events processed by one {@link Scheduler.runUntil} call at most, to catch runaway loops. */
const DEFAULT_MAX_EVENTS = 5_000_000;

/**
 * A binary min-heap of events by (atMs, sequence). The sequence breaks ties by insertion order,
 * so equal-time events run in the order they were scheduled: deterministic.
 */
class EventHeap {
  private readonly items: QueuedEvent[] = [];

  get size(): number {
    return this.items.length;
  }

  push(event: QueuedEvent): void {
    const items = this.items;
    items.push(event);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i] as QueuedEvent, items[parent] as QueuedEvent)) break;
      [items[i], items[parent]] = [items[parent] as QueuedEvent, items[i] as QueuedEvent];
      i = parent;
    }
  }

  peek(): QueuedEvent | undefined {
    return this.items[0];
  }

  pop(): QueuedEvent | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (
          left < items.length &&
          before(items[left] as QueuedEvent, items[smallest] as QueuedEvent)
        )
          smallest = left;
        if (
          right < items.length &&
          before(items[right] as QueuedEvent, items[smallest] as QueuedEvent)
        )
          smallest = right;
        if (smallest === i) break;
        [items[i], items[smallest]] = [items[smallest] as QueuedEvent, items[i] as QueuedEvent];
        i = smallest;
      }
    }
    return top;
  }
}

function before(a: QueuedEvent, b: QueuedEvent): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.sequence < b.sequence);
}

/** Lets every promise continuation queued so far (and the ones they queue) run. */
export async function drainMicrotasks(): Promise<void> {
  for (let i = 0; i < MICROTASK_DRAIN_TURNS; i++) await Promise.resolve();
}

/**
 * The discrete-event scheduler. `schedule` queues a callback at a virtual time; `runUntil`
 * pops events in (time, sequence) order, advances `now()` to each, runs it and drains the
 * microtask queue so async continuations finish deterministically before the next event.
 */
export class Scheduler {
  private nowMs = 0;
  private sequence = 0;
  private stamp = 0;
  private readonly queue = new EventHeap();
  private eventsRun = 0;
  /** Called after every event (and its microtasks); the safety checker hooks in here. */
  afterEvent: (() => void) | undefined;

  /** Virtual milliseconds since the start of the run. */
  now(): number {
    return this.nowMs;
  }

  /** Events run so far. */
  get eventCount(): number {
    return this.eventsRun;
  }

  /**
   * A strictly increasing logical timestamp: orders things that happen at the same virtual
   * millisecond (a client's response before its next request).
   */
  nextStamp(): number {
    return ++this.stamp;
  }

  /**
   * Runs `fn` after `delayMs` of virtual time (0 = after everything already due now).
   * @throws RangeError for a negative or non-finite delay.
   */
  schedule(delayMs: number, fn: () => void): ScheduledEvent {
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      throw new RangeError(`delay must be a finite number ≥ 0, got ${delayMs}`);
    }
    const event: QueuedEvent = {
      atMs: this.nowMs + delayMs,
      sequence: this.sequence++,
      run: fn,
      cancelled: false,
    };
    this.queue.push(event);
    return {
      atMs: event.atMs,
      cancel: () => {
        event.cancelled = true;
      },
    };
  }

  /**
   * Runs events until virtual time reaches `until` (a time in ms) or `until()` returns true
   * (checked after every event), or no events are left. Time ends at `until` when it is a number.
   * @throws Error if more than `maxEvents` events run (a livelock in the simulated system).
   */
  async runUntil(
    until: number | (() => boolean),
    options: { readonly maxEvents?: number } = {},
  ): Promise<void> {
    const maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
    const limitMs = typeof until === "number" ? until : Infinity;
    const done = typeof until === "number" ? () => false : until;
    let ran = 0;
    await drainMicrotasks();
    while (!done()) {
      const next = this.queue.peek();
      if (next === undefined || next.atMs > limitMs) break;
      this.queue.pop();
      if (next.cancelled) continue;
      this.nowMs = next.atMs;
      next.run();
      await drainMicrotasks();
      this.eventsRun++;
      if (++ran > maxEvents) throw new Error(`more than ${maxEvents} events in one run`);
      this.afterEvent?.();
    }
    if (typeof until === "number" && this.nowMs < until) this.nowMs = until;
  }
}

/**
 * One node's view of time: a {@link Clock} on the shared scheduler. Pausing holds the node's
 * timers (they fire, in order, on resume, as a SIGSTOPped process would); killing drops them
 * for good (a crash).
 */
export class SimClock implements Clock {
  private paused = false;
  private dead = false;
  private held: (() => void)[] = [];

  constructor(private readonly scheduler: Scheduler) {}

  /** @inheritdoc */
  now(): number {
    return this.scheduler.now();
  }

  /** @inheritdoc */
  setTimer(delayMs: number, callback: () => void): TimerHandle {
    let cancelled = false;
    const event = this.scheduler.schedule(Math.max(0, delayMs), () => this.fire(run));
    const run = (): void => {
      if (!cancelled) callback();
    };
    return {
      cancel: () => {
        cancelled = true;
        event.cancel();
      },
    };
  }

  /** Runs `callback` now unless paused (then on resume) or dead (never). */
  fire(callback: () => void): void {
    if (this.dead) return;
    if (this.paused) this.held.push(callback);
    else callback();
  }

  /** True while paused. */
  get isPaused(): boolean {
    return this.paused;
  }

  /** True once killed. */
  get isDead(): boolean {
    return this.dead;
  }

  /** Holds every timer and delivery until {@link resume}. */
  pause(): void {
    this.paused = true;
  }

  /** Releases what was held, in the order it came due, as events now. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const callback of held) this.scheduler.schedule(0, () => this.fire(callback));
  }

  /** Drops every pending and future timer: the process is gone. */
  kill(): void {
    this.dead = true;
    this.held = [];
  }
}
