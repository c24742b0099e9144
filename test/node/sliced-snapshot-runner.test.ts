import { describe, expect, it } from "vitest";
import {
  SNAPSHOT_TURN_BUDGET_MS,
  SNAPSHOT_TURN_MAX_BYTES,
  SlicedSnapshotRunner,
} from "../../src/node/sliced-snapshot-runner.js";
import type { SnapshotEncoding } from "../../src/statemachine/state-machine.js";
import type { SnapshotWriter } from "../../src/storage/log-store.js";
import { EMPTY_CONF_STATE } from "../../src/raft/types.js";
import { ManualClock } from "./fakes.js";

/** An encoding of `sizeBytes` bytes in slices of the requested budget, each costing `costMs`. */
function fakeEncoding(clock: ManualClock, sizeBytes: number, costMs: number) {
  const bytes = new Uint8Array(sizeBytes).map((_, i) => i & 0xff);
  const log = { slices: 0, closed: 0, streaming: false };
  let offset = 0;
  let taken = 0;
  const encoding: SnapshotEncoding = {
    get encodedBytes() {
      return offset;
    },
    sizeBytes,
    startStreaming: () => {
      log.streaming = true;
    },
    take: () => bytes.subarray(taken, (taken = offset)),
    next: (budgetBytes = 1) => {
      if (offset === sizeBytes) return undefined;
      clock.spend(costMs);
      log.slices++;
      const slice = bytes.subarray(offset, Math.min(sizeBytes, offset + budgetBytes));
      offset += slice.length;
      return slice;
    },
    finish: () => bytes,
    close: () => {
      log.closed++;
    },
  };
  return { encoding, log, bytes };
}

describe("SlicedSnapshotRunner", () => {
  it("encodes on later turns, handing the loop back after its time budget, and closes the encoding", async () => {
    const clock = new ManualClock();
    // Slices of 1 ms each: a turn takes SNAPSHOT_TURN_BUDGET_MS of them.
    const { encoding, log, bytes } = fakeEncoding(clock, 40 * 256 * 1024, 1);
    const runner = new SlicedSnapshotRunner(clock, encoding);
    const outcome = runner.run(() => true);
    // Nothing is encoded in the turn that started the run; then one turn per timer.
    expect(log.slices).toBe(0);
    await clock.advance(1000);
    const result = await outcome;
    expect(result.kind).toBe("complete");
    if (result.kind !== "complete") return;
    expect(result.data).toBe(bytes);
    // 40 slices, SNAPSHOT_TURN_BUDGET_MS a turn; one more turn finds the encoding complete.
    expect(result.turns).toBe(40 / SNAPSHOT_TURN_BUDGET_MS + 1);
    expect(log.closed).toBe(1);
  });

  it("bounds a turn by bytes when the clock stands still (the simulator's)", async () => {
    const clock = new ManualClock();
    const { encoding } = fakeEncoding(clock, 3 * SNAPSHOT_TURN_MAX_BYTES + 1, 0);
    const runner = new SlicedSnapshotRunner(clock, encoding);
    const outcome = runner.run(() => true);
    await clock.advance(0);
    const result = await outcome;
    // Three turns of 4 MiB each, then one that encodes the last byte and finds it complete.
    expect(result.kind === "complete" && result.turns).toBe(4);
  });

  it("counts bytes encoded ahead (empty slices) toward a turn's bound when the clock stands still", async () => {
    const clock = new ManualClock();
    const { encoding: rest } = fakeEncoding(clock, 1, 0);
    // Like the orchestrator's part: 3 × 4 MiB encoded ahead in 256 KiB steps, each an empty slice.
    let aheadBytes = 0;
    const encoding: SnapshotEncoding = {
      get encodedBytes() {
        return aheadBytes + rest.encodedBytes;
      },
      next: (budgetBytes = 1) => {
        if (aheadBytes === 3 * SNAPSHOT_TURN_MAX_BYTES) return rest.next(budgetBytes);
        aheadBytes += budgetBytes;
        return new Uint8Array(0);
      },
      finish: () => rest.finish(),
      close: () => rest.close(),
      get sizeBytes() {
        return aheadBytes === 3 * SNAPSHOT_TURN_MAX_BYTES ? rest.sizeBytes : undefined;
      },
      startStreaming: () => rest.startStreaming(),
      take: () => rest.take(),
    };
    const outcome = new SlicedSnapshotRunner(clock, encoding).run(() => true);
    await clock.advance(0);
    const result = await outcome;
    // Three turns encoding ahead, then one for the last byte and finding it complete.
    expect(result.kind === "complete" && result.turns).toBe(4);
  });

  it("abandons the snapshot when it is no longer wanted (a newer one was installed), closing the encoding", async () => {
    const clock = new ManualClock();
    const { encoding, log } = fakeEncoding(clock, 40 * 256 * 1024, 1);
    const runner = new SlicedSnapshotRunner(clock, encoding);
    let turns = 0;
    const outcome = runner.run(() => ++turns <= 3);
    await clock.advance(1000);
    expect(await outcome).toEqual({ kind: "abandoned" });
    expect(log.slices).toBe(3 * SNAPSHOT_TURN_BUDGET_MS);
    expect(log.closed).toBe(1);
  });

  it("abandon() ends a waiting run at once, without its timer firing", async () => {
    const clock = new ManualClock();
    const { encoding, log } = fakeEncoding(clock, 1024, 1);
    const runner = new SlicedSnapshotRunner(clock, encoding);
    const outcome = runner.run(() => true);
    runner.abandon();
    expect(await outcome).toEqual({ kind: "abandoned" });
    expect(log.slices).toBe(0);
    expect(log.closed).toBe(1);
  });

  describe("streaming to a writer", () => {
    /** A writer recording what it is given (copies: the encoding may reuse its buffer). */
    function recordingWriter(failOnWrite?: number) {
      const log = { opened: [] as number[], pieces: [] as Uint8Array[], aborted: 0, committed: 0 };
      const writer: SnapshotWriter = {
        write: async (piece) => {
          if (log.pieces.length === failOnWrite) throw new Error("disk full");
          log.pieces.push(piece.slice());
        },
        commit: async () => {
          log.committed++;
          return { index: 1, term: 1, confState: EMPTY_CONF_STATE };
        },
        abort: async () => {
          log.aborted++;
        },
      };
      const open = async (sizeBytes: number) => {
        log.opened.push(sizeBytes);
        return writer;
      };
      return { writer, open, log };
    }

    it("writes each turn's bytes before the next turn and hands the writer over uncommitted", async () => {
      const clock = new ManualClock();
      const { encoding, log, bytes } = fakeEncoding(clock, 3 * SNAPSHOT_TURN_MAX_BYTES + 5, 0);
      const sink = recordingWriter();
      const outcome = new SlicedSnapshotRunner(clock, encoding).run(() => true, sink.open);
      await clock.advance(0);
      const result = await outcome;
      expect(log.streaming).toBe(true);
      expect(result).toMatchObject({ kind: "streamed", sizeBytes: bytes.length, turns: 4 });
      expect(sink.log.opened).toEqual([bytes.length]);
      // One write per turn, in order, together exactly the snapshot.
      expect(sink.log.pieces.map((p) => p.length)).toEqual([
        SNAPSHOT_TURN_MAX_BYTES,
        SNAPSHOT_TURN_MAX_BYTES,
        SNAPSHOT_TURN_MAX_BYTES,
        5,
      ]);
      expect(Buffer.concat(sink.log.pieces).equals(bytes)).toBe(true);
      expect(sink.log.committed).toBe(0);
      expect(sink.log.aborted).toBe(0);
      expect(log.closed).toBe(1);
    });

    it("aborts the writer when the snapshot is abandoned part-way", async () => {
      const clock = new ManualClock();
      const { encoding, log } = fakeEncoding(clock, 3 * SNAPSHOT_TURN_MAX_BYTES, 0);
      const sink = recordingWriter();
      let turns = 0;
      const outcome = new SlicedSnapshotRunner(clock, encoding).run(() => ++turns <= 2, sink.open);
      await clock.advance(0);
      expect(await outcome).toEqual({ kind: "abandoned" });
      expect(sink.log.pieces).toHaveLength(2);
      expect(sink.log.aborted).toBe(1);
      expect(log.closed).toBe(1);
    });

    it("rejects with a failed write's error, aborting the writer and closing the encoding", async () => {
      const clock = new ManualClock();
      const { encoding, log } = fakeEncoding(clock, 3 * SNAPSHOT_TURN_MAX_BYTES, 0);
      const sink = recordingWriter(1);
      const outcome = new SlicedSnapshotRunner(clock, encoding).run(() => true, sink.open);
      const settled = outcome.then(
        () => "resolved",
        (error: Error) => error.message,
      );
      await clock.advance(0);
      expect(await settled).toBe("disk full");
      expect(sink.log.aborted).toBe(1);
      expect(log.closed).toBe(1);
    });
  });
});
