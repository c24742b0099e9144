import type { Clock, TimerHandle, Transport, TransportHandlers } from "../../src/node/ports.js";
import { MessageType, type Message, type NodeId } from "../../src/raft/types.js";
import type { StateMachine } from "../../src/statemachine/state-machine.js";

/** A clock that moves only when told to; timers fire in time order. */
export class ManualClock implements Clock {
  private nowMs = 0;
  private sequence = 0;
  private timers: { at: number; seq: number; callback: () => void; cancelled: boolean }[] = [];

  now(): number {
    return this.nowMs;
  }

  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const timer = { at: this.nowMs + delayMs, seq: this.sequence++, callback, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }

  /** Time passes while the caller works (no timer fires until the next {@link advance}). */
  spend(ms: number): void {
    this.nowMs += ms;
  }

  /** Moves time forward by `ms`, firing due timers and letting promises settle between them. */
  async advance(ms: number): Promise<void> {
    const target = this.nowMs + ms;
    for (;;) {
      await flushPromises();
      this.timers = this.timers.filter((t) => !t.cancelled);
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (next === undefined || next.at > target) break;
      this.timers.shift();
      // A timer that came due while time was spent fires late: time never goes back.
      this.nowMs = Math.max(this.nowMs, next.at);
      next.callback();
    }
    this.nowMs = target;
    await flushPromises();
  }
}

/** Lets queued promise callbacks run. */
export async function flushPromises(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Delivers messages between nodes in the same process, asynchronously, in order. */
export class LoopbackNetwork {
  private readonly handlers = new Map<NodeId, (messages: readonly Message[]) => void>();
  /** Returns true to drop a message. */
  dropIf: (m: Message) => boolean = () => false;
  /** Messages to these nodes wait (in order) until {@link release}. */
  readonly holdFor = new Set<NodeId>();
  private held: Message[] = [];

  /** Delivers the held messages, in the order they were sent, and stops holding. */
  release(): void {
    this.holdFor.clear();
    const held = this.held;
    this.held = [];
    for (const m of held) this.handlers.get(m.to)?.([m]);
  }

  transport(id: NodeId): Transport {
    let reportSnapshot: TransportHandlers["onSnapshotStatus"] | undefined;
    return {
      send: (messages) => {
        for (const m of messages) {
          const isSnapshot = m.type === MessageType.Snap;
          if (this.dropIf(m)) {
            if (isSnapshot) queueMicrotask(() => reportSnapshot?.(m.to, "failure"));
            continue;
          }
          if (this.holdFor.has(m.to) && !isSnapshot) {
            this.held.push(m);
            continue;
          }
          queueMicrotask(() => {
            const handler = this.handlers.get(m.to);
            handler?.([m]);
            if (isSnapshot) reportSnapshot?.(m.to, handler === undefined ? "failure" : "finish");
          });
        }
      },
      listen: ({ onMessages, onSnapshotStatus }) => {
        this.handlers.set(id, onMessages);
        reportSnapshot = onSnapshotStatus;
      },
      close: () => {
        this.handlers.delete(id);
        return Promise.resolve();
      },
    };
  }
}

/** A state machine that appends each command (as text) to a list and answers with its length. */
export class ListMachine implements StateMachine<number> {
  items: string[] = [];
  apply(entry: { data: Uint8Array }): number {
    this.items.push(new TextDecoder().decode(entry.data));
    return this.items.length;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.items));
  }
  restore(data: Uint8Array): void {
    this.items = JSON.parse(new TextDecoder().decode(data)) as string[];
  }
}
