import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/common/random.js";
import { EntryType, type Entry } from "../../src/raft/types.js";
import { SimDisk } from "../../src/sim/disk.js";
import { Scheduler, SimClock } from "../../src/sim/scheduler.js";

const entry = (index: number, term = 1): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new Uint8Array([index]),
});
const entries = (from: number, to: number): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => entry(from + i));

function disk(options: { tornWrites?: boolean; ackBeforeDurable?: boolean } = {}) {
  const scheduler = new Scheduler();
  const d = new SimDisk(
    scheduler,
    new SeededRandom(7),
    {
      minSyncLatencyMs: 5,
      maxSyncLatencyMs: 5,
      tornWrites: options.tornWrites ?? false,
      ...(options.ackBeforeDurable === undefined
        ? {}
        : { ackBeforeDurable: options.ackBeforeDurable }),
    },
    undefined,
  );
  return { scheduler, d, clock: new SimClock(scheduler) };
}

describe("SimDisk", () => {
  it("makes a synced write durable only when its fsync completes", async () => {
    const { scheduler, d, clock } = disk();
    const store = d.open(clock);
    let acked = false;
    void store.save({ entries: entries(1, 3) }, { sync: true }).then(() => (acked = true));
    expect(store.lastIndex()).toBe(3); // visible to the node at once (page cache)
    expect(d.durableImage().lastIndex()).toBe(0);
    await scheduler.runUntil(10);
    expect(acked).toBe(true);
    expect(d.durableImage().lastIndex()).toBe(3);
  });

  it("loses unsynced and in-flight writes on a crash; the restart sees the durable image", async () => {
    const { scheduler, d, clock } = disk();
    const store = d.open(clock);
    await Promise.all([
      store.save({ entries: entries(1, 2) }, { sync: true }),
      scheduler.runUntil(10),
    ]);
    void store.save({ entries: [], hardState: { term: 1, vote: 1, commit: 2 } }, { sync: false });
    void store.save({ entries: entries(3, 4) }, { sync: true });
    d.crash();
    const restarted = d.open(new SimClock(scheduler));
    expect(restarted.lastIndex()).toBe(2);
    expect(restarted.initialState().hardState.commit).toBe(0);
  });

  it("with torn writes, keeps an ordered prefix of what was in flight", () => {
    const { scheduler, d, clock } = disk({ tornWrites: true });
    const lastIndexes = new Set<number>();
    let store = d.open(clock);
    let next = 1;
    for (let i = 0; i < 30; i++) {
      void store.save({ entries: entries(next, next + 3) }, { sync: true });
      next += 4;
      d.crash();
      store = d.open(new SimClock(scheduler));
      lastIndexes.add(store.lastIndex() - (next - 4 - 1));
      next = store.lastIndex() + 1;
    }
    // Sometimes nothing survived, sometimes all of it, sometimes a torn prefix.
    expect(lastIndexes.has(0)).toBe(true);
    expect(lastIndexes.has(4)).toBe(true);
    expect([1, 2, 3].some((n) => lastIndexes.has(n))).toBe(true);
  });

  it("with the planted bug, acknowledges before durable and loses the write on a crash", async () => {
    const { scheduler, d, clock } = disk({ ackBeforeDurable: true });
    const store = d.open(clock);
    await store.save({ entries: entries(1, 3) }, { sync: true }); // resolves at once
    expect(scheduler.now()).toBe(0);
    d.crash();
    expect(d.open(new SimClock(scheduler)).lastIndex()).toBe(0);
  });
});
