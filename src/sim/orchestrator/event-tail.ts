/**
 * The last orchestrator events of a run (agent log lines, simulated processes starting and
 * ending, the operators' commands), kept in a fixed-size ring and formatted only when a failure
 * report asks for them, as the cluster's own trace tail is.
 */

/** Events kept by default. */
export const DEFAULT_EVENT_TAIL = 200;

/** A bounded ring of the newest orchestrator events. */
export class EventTail {
  readonly #atMs: number[] = [];
  readonly #texts: (string | (() => string))[] = [];
  #next = 0;

  /** @throws RangeError unless `capacity` is a positive integer. */
  constructor(readonly capacity: number = DEFAULT_EVENT_TAIL) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`event tail capacity must be a positive integer, got ${capacity}`);
    }
  }

  /** Records an event at virtual time `atMs`; `text` may be a function, called only if needed. */
  add(atMs: number, text: string | (() => string)): void {
    this.#atMs[this.#next] = atMs;
    this.#texts[this.#next] = text;
    this.#next = (this.#next + 1) % this.capacity;
  }

  /** The kept events, oldest first, one line each. */
  lines(): string[] {
    const out: string[] = [];
    const size = this.#texts.length;
    const start = size < this.capacity ? 0 : this.#next;
    for (let k = 0; k < size; k++) {
      const i = (start + k) % this.capacity;
      const text = this.#texts[i] as string | (() => string);
      const at = String(this.#atMs[i]).padStart(7);
      out.push(`${at} ms  orchestrator ${typeof text === "string" ? text : text()}`);
    }
    return out;
  }
}
