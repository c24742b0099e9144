/**
 * The last events of a run (message deliveries, faults, leader changes, client operations),
 * kept in a fixed-size ring so a failure can show what led to it. Recording stores a time, a
 * kind and a reference to the event's own object; nothing is formatted until a failure asks
 * for {@link TraceTail.lines}, so a passing run pays a few array writes per event.
 */
import { messageTypeName, type Message, type NodeId } from "../raft/types.js";
import { describeOperation, type HistoryOperation, type KvInput } from "./history.js";

/** Events kept by default. */
export const DEFAULT_TRACE_TAIL_EVENTS = 50;

/** What a recorded event is, and the object it refers to. */
export type TraceTailEvent =
  | { readonly kind: "deliver"; readonly subject: Message }
  | { readonly kind: "fault"; readonly subject: string }
  | { readonly kind: "leader"; readonly subject: { readonly id: NodeId; readonly term: number } }
  | {
      readonly kind: "invoke";
      readonly subject: { readonly client: number; readonly input: KvInput };
    }
  | { readonly kind: "complete"; readonly subject: HistoryOperation };

/** A bounded ring buffer of the newest trace events. */
export class TraceTail {
  private readonly atMs: number[];
  private readonly kinds: TraceTailEvent["kind"][];
  private readonly subjects: TraceTailEvent["subject"][];
  private next = 0;
  private size = 0;

  /** @throws RangeError unless `capacity` is a positive integer. */
  constructor(readonly capacity: number = DEFAULT_TRACE_TAIL_EVENTS) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`trace tail capacity must be a positive integer, got ${capacity}`);
    }
    this.atMs = new Array<number>(capacity).fill(0);
    this.kinds = new Array<TraceTailEvent["kind"]>(capacity).fill("fault");
    this.subjects = new Array<TraceTailEvent["subject"]>(capacity).fill("");
  }

  /** Records an event at virtual time `atMs`, dropping the oldest once full. */
  add(atMs: number, event: TraceTailEvent): void {
    const i = this.next;
    this.atMs[i] = atMs;
    this.kinds[i] = event.kind;
    this.subjects[i] = event.subject;
    this.next = i + 1 === this.capacity ? 0 : i + 1;
    if (this.size < this.capacity) this.size++;
  }

  /** Events recorded so far, up to the capacity. */
  get length(): number {
    return this.size;
  }

  /** The kept events, oldest first, one readable line each. */
  lines(): string[] {
    const out: string[] = [];
    const start = (this.next - this.size + this.capacity) % this.capacity;
    for (let k = 0; k < this.size; k++) {
      const i = (start + k) % this.capacity;
      const event = { kind: this.kinds[i], subject: this.subjects[i] } as TraceTailEvent;
      out.push(`${String(this.atMs[i]).padStart(7)} ms  ${describe(event)}`);
    }
    return out;
  }
}

function describe(event: TraceTailEvent): string {
  switch (event.kind) {
    case "deliver": {
      const m = event.subject;
      const parts = [
        `deliver ${messageTypeName(m.type)} ${m.from}->${m.to} term ${m.term}`,
        `index ${m.index} logTerm ${m.logTerm}`,
      ];
      if (m.entries.length > 0) {
        const first = m.entries[0];
        const last = m.entries[m.entries.length - 1];
        parts.push(`entries ${first?.index}..${last?.index} (terms ${first?.term}..${last?.term})`);
      }
      if (m.commit > 0) parts.push(`commit ${m.commit}`);
      if (m.reject) parts.push(`reject (hint ${m.rejectHint})`);
      return parts.join(" ");
    }
    case "fault":
      return `nemesis ${event.subject}`;
    case "leader":
      return `leader node ${event.subject.id} of term ${event.subject.term}`;
    case "invoke":
      return `client ${event.subject.client} invokes ${JSON.stringify(event.subject.input)}`;
    case "complete":
      return `client completes ${describeOperation(event.subject)}`;
  }
}
