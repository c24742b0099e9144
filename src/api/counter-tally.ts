/**
 * Counts of a labelled prom-client counter kept apart between reads: prom-client's `inc` builds
 * a hash string of the labels, checks them and returns an object, garbage on every HTTP request
 * and every proposal. Here a count finds its cell through one map per label (label values are the
 * routes', methods', namespaces' own strings, so no key is built) and adds one; the counter gets
 * the sums when it is read (its `collect`, before every scrape), so it reads the same.
 */
import type { Counter } from "prom-client";

/** One combination of label values and its count since the last read. */
interface Cell<L extends string> {
  readonly labels: Partial<Record<L, string>>;
  count: number;
}

/** See the module comment. Up to three labels. */
export class CounterTally<L extends string> {
  readonly #names: readonly L[];
  readonly #root = new Map<string, Map<string, Map<string | number, Cell<L>>>>();
  readonly #cells: Cell<L>[] = [];

  /** Counts for `names` (one, two or three label names), in the order `add` takes values. */
  constructor(names: readonly L[]) {
    this.#names = names;
  }

  /** Counts one for these label values (those past the label names are ignored). Throws nothing. */
  add(first: string, second = "", third: string | number = ""): void {
    let level = this.#root.get(first);
    if (level === undefined) {
      level = new Map();
      this.#root.set(first, level);
    }
    let cells = level.get(second);
    if (cells === undefined) {
      cells = new Map();
      level.set(second, cells);
    }
    let cell = cells.get(third);
    if (cell === undefined) {
      const labels: Partial<Record<L, string>> = {};
      [first, second, String(third)].forEach((value, i) => {
        const name = this.#names[i];
        if (name !== undefined) labels[name] = value;
      });
      cell = { labels, count: 0 };
      cells.set(third, cell);
      this.#cells.push(cell);
    }
    cell.count++;
  }

  /** Adds the counts since the last call to `counter` (call it from the counter's `collect`). */
  flushTo(counter: Counter<L>): void {
    for (const cell of this.#cells) {
      if (cell.count === 0) continue;
      counter.inc(cell.labels, cell.count);
      cell.count = 0;
    }
  }
}
