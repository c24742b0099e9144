import { describe, expect, it } from "vitest";
import { ListMachine } from "./fakes.js";
import { SeededRandom } from "../../src/common/random.js";
import { RaftNode, type RaftStateChange } from "../../src/node/raft-node.js";
import { confMembers, message, MessageType, type ConfState } from "../../src/raft/types.js";
import { SnapshotOutOfDateError } from "../../src/raft/storage.js";
import type { SnapshotWriter } from "../../src/storage/log-store.js";
import type { AppliedEntry, SnapshotEncoding } from "../../src/statemachine/state-machine.js";
import { MemoryLogStore } from "../../src/storage/memory-log-store.js";
import type { Clock, Transport } from "../../src/node/ports.js";
import { LoopbackNetwork, ManualClock } from "./fakes.js";

/**
 * A list machine whose snapshot is captured at the call and handed out in `slices` pieces, each
 * taking `sliceCostMs` of the node's (manual) clock, like encoding a large state would.
 */
class SlicedListMachine extends ListMachine {
  /** Each capture: slices handed out so far, and whether the encoding completed or was closed. */
  readonly captures: { sliced: number; closed: boolean; complete: boolean; atItems: number }[] = [];
  constructor(
    private readonly clock: ManualClock,
    private readonly slices: number,
    private readonly sliceCostMs: number,
  ) {
    super();
  }
  captureSnapshot(): SnapshotEncoding {
    const bytes = this.snapshot();
    const capture = { sliced: 0, closed: false, complete: false, atItems: this.items.length };
    this.captures.push(capture);
    const sliceBytes = Math.ceil(bytes.length / this.slices);
    let offset = 0;
    let taken = 0;
    return {
      get encodedBytes() {
        return offset;
      },
      sizeBytes: bytes.length,
      startStreaming: () => undefined,
      take: () => bytes.subarray(taken, (taken = offset)),
      next: () => {
        if (offset === bytes.length) {
          capture.complete = true;
          return undefined;
        }
        this.clock.spend(this.sliceCostMs);
        capture.sliced++;
        const slice = bytes.subarray(offset, Math.min(bytes.length, offset + sliceBytes));
        offset += slice.length;
        return slice;
      },
      finish: () => bytes,
      close: () => {
        capture.closed = true;
      },
    };
  }
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const voters = {
  voters: [1, 2, 3],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

function cluster(
  options: {
    snapshotEveryEntries?: number;
    snapshotEveryBytes?: number;
    snapshotMinBytes?: number;
    raft?: { maxCommittedSizePerReadyBytes: number };
    forwardProposals?: boolean;
    /** Wraps the shared clock for one node (e.g. to count its timer wakeups). */
    clockFor?: (id: number, clock: Clock) => Clock;
    onRaftStateChange?: (state: RaftStateChange) => void;
    /** Builds each node's state machine (default: a plain {@link ListMachine}). */
    machineFor?: (clock: ManualClock) => ListMachine;
    /** Wraps one node's transport (e.g. to watch what it sends). */
    transportFor?: (id: number, transport: Transport) => Transport;
  } = {},
) {
  const { clockFor, machineFor, transportFor, ...nodeOptions } = options;
  const clock = new ManualClock();
  const network = new LoopbackNetwork();
  const stores = new Map([1, 2, 3].map((id) => [id, new MemoryLogStore({ confState: voters })]));
  const machines = new Map(
    [1, 2, 3].map((id) => [id, machineFor === undefined ? new ListMachine() : machineFor(clock)]),
  );
  const nodes = new Map(
    [1, 2, 3].map((id) => [
      id,
      new RaftNode<number>({
        id,
        logStore: stores.get(id)!,
        stateMachine: machines.get(id)!,
        transport:
          transportFor === undefined
            ? network.transport(id)
            : transportFor(id, network.transport(id)),
        clock: clockFor === undefined ? clock : clockFor(id, clock),
        random: new SeededRandom(id),
        ...nodeOptions,
      }),
    ]),
  );
  for (const node of nodes.values()) node.start();
  return { clock, network, nodes, machines, stores };
}

async function electedLeader(c: ReturnType<typeof cluster>): Promise<RaftNode<number>> {
  for (let i = 0; i < 100; i++) {
    await c.clock.advance(100);
    const leader = [...c.nodes.values()].find((n) => n.isLeader);
    if (leader !== undefined) return leader;
  }
  throw new Error("no leader elected");
}

describe("RaftNode runtime", () => {
  it("elects a leader, applies proposals everywhere and resolves with the result", async () => {
    const c = cluster();
    const leader = await electedLeader(c);
    const results = Promise.all(["a", "b", "c"].map((s) => leader.propose(enc(s))));
    await c.clock.advance(10);
    expect(await results).toEqual([1, 2, 3]);
    await c.clock.advance(500);
    for (const m of c.machines.values()) expect(m.items).toEqual(["a", "b", "c"]);
  });

  it("counts a peer as heard only while it is in the configuration: a removed member's pre-votes do not keep its worker alive", async () => {
    const c = cluster();
    const leader = await electedLeader(c);
    const removed = [1, 2, 3].find((id) => id !== leader.id)!;
    await c.clock.advance(200);
    expect(leader.lastHeardFromMs(removed)).toBeDefined();
    const done = leader.removeMember(removed);
    await c.clock.advance(50);
    expect(confMembers(await done)).not.toContain(removed);
    // The removed node runs on and keeps sending to the leader (its pre-votes, in a real cluster).
    const sent = c.network.transport(removed);
    for (let i = 0; i < 5; i++) {
      await c.clock.advance(300);
      sent.send([message({ type: MessageType.PreVote, from: removed, to: leader.id, term: 99 })]);
    }
    await c.clock.advance(10);
    expect(leader.lastHeardFromMs(removed)).toBeUndefined();
    const other = [1, 2, 3].find((id) => id !== leader.id && id !== removed)!;
    expect(leader.lastHeardFromMs(other)).toBeDefined();
  });

  it("ticks lazily: an idle follower's tick timer never fires while it hears its leader, the leader's on every heartbeat, and a lost leader is still replaced in time", async () => {
    const wakeups = new Map<number, number>();
    const c = cluster({
      clockFor: (id, clock) => ({
        now: () => clock.now(),
        setTimer: (delayMs, callback) =>
          clock.setTimer(delayMs, () => {
            wakeups.set(id, (wakeups.get(id) ?? 0) + 1);
            callback();
          }),
      }),
    });
    const leader = await electedLeader(c);
    wakeups.clear();
    // 10 s idle: 100 ticks of 100 ms; the election timeout is 10-20 ticks.
    await c.clock.advance(10_000);
    const followers = [...c.nodes.values()].filter((n) => n !== leader);
    for (const f of followers) {
      expect(f.isLeader).toBe(false);
      // Each heartbeat moves its election timer back (it woke a few times per election timeout
      // when the timer stayed where it was and re-armed itself on firing).
      expect(wakeups.get(f.id) ?? 0).toBe(0);
    }
    // The leader heartbeats on every tick.
    expect(wakeups.get(leader.id) ?? 0).toBeGreaterThanOrEqual(95);
    expect(leader.isLeader).toBe(true);

    // The leader goes silent: a follower's election timeout (at most 20 ticks) still fires.
    c.network.dropIf = (m) => m.from === leader.id || m.to === leader.id;
    await c.clock.advance(2_000 + 500);
    expect(followers.some((f) => f.isLeader)).toBe(true);
  });

  it("a tick timer that runs a fraction of a millisecond early (as Node's do) is on time: the leader wakes once per heartbeat, not twice", async () => {
    const wakeups = new Map<number, number>();
    // Node arms a timer from its loop clock (whole ms, read when the turn began): it can run
    // up to about a millisecond before the time it was armed for. (And it runs none sooner than
    // 1 ms after it was armed.)
    const EARLY_MS = 0.7;
    const c = cluster({
      clockFor: (id, clock) => ({
        now: () => clock.now(),
        setTimer: (delayMs, callback) =>
          clock.setTimer(Math.max(1, delayMs) - EARLY_MS, () => {
            wakeups.set(id, (wakeups.get(id) ?? 0) + 1);
            callback();
          }),
      }),
    });
    const leader = await electedLeader(c);
    const heartbeats = { count: 0 };
    const followers = [...c.nodes.values()].filter((n) => n !== leader);
    c.network.dropIf = (m) => {
      if (m.from === leader.id && m.type === MessageType.Heartbeat) heartbeats.count++;
      return false;
    };
    wakeups.clear();
    // 10 s idle: 100 ticks of 100 ms, a heartbeat on each (to both followers).
    await c.clock.advance(10_000);
    expect(leader.isLeader).toBe(true);
    expect(heartbeats.count).toBeGreaterThanOrEqual(2 * 95);
    // One wake-up per heartbeat: a timer counted as one tick short would wake again for it.
    expect(wakeups.get(leader.id) ?? 0).toBeLessThanOrEqual(105);
    for (const f of followers) expect(wakeups.get(f.id) ?? 0).toBe(0);
  });

  it("a tick timer that runs much earlier than it was armed for (armed in a long turn) counts only the ticks that elapsed", async () => {
    // Every other timer of more than 50 ms is armed in a turn that began 40 ms before: it runs
    // 40 ms before its time.
    const EARLY_MS = 40;
    let armed = 0;
    const c = cluster({
      clockFor: (_, clock) => ({
        now: () => clock.now(),
        setTimer: (delayMs, callback) =>
          clock.setTimer(
            delayMs > 50 && armed++ % 2 === 0 ? delayMs - EARLY_MS : delayMs,
            callback,
          ),
      }),
    });
    const leader = await electedLeader(c);
    const sentAtMs: number[] = [];
    c.network.dropIf = (m) => {
      if (m.from === leader.id && m.type === MessageType.Heartbeat) sentAtMs.push(c.clock.now());
      return false;
    };
    await c.clock.advance(5_000);
    // Heartbeats still 100 ms (one tick) apart, never 60 (taken as on time, the early timer
    // would send one 40 ms early).
    const perFollower = sentAtMs.filter((_, i) => i % 2 === 0);
    const gaps = perFollower.slice(1).map((t, i) => t - (perFollower[i] ?? 0));
    expect(gaps.length).toBeGreaterThan(40);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(100);
  });

  it("a follower stalled past its election timeout reads its leader's waiting messages before it campaigns", async () => {
    // Every role a node is in right after one of its timers ran.
    const rolesAfterTimers = new Map<number, string[]>();
    const c: ReturnType<typeof cluster> = cluster({
      clockFor: (id, clock) => ({
        now: () => clock.now(),
        setTimer: (delayMs, callback) =>
          clock.setTimer(delayMs, () => {
            callback();
            const role = c.nodes.get(id)?.status().role;
            if (role !== undefined)
              rolesAfterTimers.set(id, [...(rolesAfterTimers.get(id) ?? []), role]);
          }),
      }),
    });
    const leader = await electedLeader(c);
    const follower = [...c.nodes.values()].find((n) => n !== leader)!;
    const term = leader.status().term;
    // The follower's process stalls for 3 s (three election timeouts): its leader's heartbeats
    // wait in its socket, and no timer runs meanwhile.
    c.network.holdFor.add(follower.id);
    c.clock.spend(3_000);
    rolesAfterTimers.clear();
    // When it runs again its timers come first (as in Node's event loop), then its input.
    c.clock.setTimer(0, () => c.network.release());
    await c.clock.advance(0);
    await c.clock.advance(50);
    // It never campaigned, not even as a pre-candidate.
    expect(rolesAfterTimers.get(follower.id)?.length).toBeGreaterThan(0);
    expect(new Set(rolesAfterTimers.get(follower.id))).toEqual(new Set(["follower"]));
    expect(follower.status().role).toBe("follower");
    expect(follower.status().leader).toBe(leader.id);
    expect(leader.status().term).toBe(term);
    expect(leader.isLeader).toBe(true);
  });

  it("reports each change of role, term or leader once, as it happens", async () => {
    const seen: RaftStateChange[] = [];
    const c = cluster({ onRaftStateChange: (state) => seen.push(state) });
    const leader = await electedLeader(c);
    const term = leader.status().term;
    await c.clock.advance(5_000);
    const final = seen.filter((s) => s.term === term && s.leader === leader.id);
    // Every node reports the leader of the term once (the leader as leader): commits and
    // heartbeats since then repeated nothing.
    expect(final.filter((s) => s.role === "leader")).toHaveLength(1);
    expect(final.filter((s) => s.role === "follower")).toHaveLength(2);
  });

  it("forwards a follower's proposals to the leader over the peer transport and answers them from its own apply", async () => {
    const c = cluster();
    const leader = await electedLeader(c);
    const [follower, other] = [...c.nodes.values()].filter((n) => !n.isLeader) as [
      RaftNode<number>,
      RaftNode<number>,
    ];
    await c.clock.advance(200);
    const sent: number[] = [];
    const previous = c.network.dropIf;
    c.network.dropIf = (m) => {
      if (m.type === MessageType.Prop) sent.push(m.from);
      return previous(m);
    };
    // Two followers at once, and the leader itself: each caller gets the result of its own entry.
    const fromFollower = Promise.all(["f1", "f2"].map((s) => follower.propose(enc(s))));
    const fromOther = other.propose(enc("o1"));
    const fromLeader = leader.propose(enc("l1"));
    await c.clock.advance(50);
    const results = [...(await fromFollower), await fromOther, await fromLeader];
    await c.clock.advance(300);
    const items = c.machines.get(leader.id)!.items;
    // Every node applied the bare commands (no envelope) in the same order.
    expect([...items].sort()).toEqual(["f1", "f2", "l1", "o1"]);
    for (const m of c.machines.values()) expect(m.items).toEqual(items);
    // Each result is the list length at that command's own position.
    expect(results).toEqual(["f1", "f2", "o1", "l1"].map((s) => items.indexOf(s) + 1));
    expect(sent.sort()).toEqual([follower.id, other.id]);
    expect(follower.status().proposalsForwarded).toBe(2);
    expect(leader.status().proposalsForwarded).toBe(0);
    expect(follower.status().pendingProposals).toBe(0);
  });

  it("a forwarded proposal that is lost times out (outcome unknown) and is not applied", async () => {
    const c = cluster();
    await electedLeader(c);
    const follower = [...c.nodes.values()].find((n) => !n.isLeader)!;
    await c.clock.advance(200);
    c.network.dropIf = (m) => m.type === MessageType.Prop;
    const write = follower.propose(enc("lost"), { timeoutMs: 1000 });
    const outcome = expect(write).rejects.toMatchObject({ code: "TIMEOUT" });
    await c.clock.advance(1100);
    await outcome;
    for (const m of c.machines.values()) expect(m.items).not.toContain("lost");
    expect(follower.status().pendingProposals).toBe(0);
  });

  it("with forwarding off, or leader-only, a follower refuses with the leader's id", async () => {
    const c = cluster({ forwardProposals: false });
    const leader = await electedLeader(c);
    const follower = [...c.nodes.values()].find((n) => !n.isLeader)!;
    await c.clock.advance(200);
    await expect(follower.propose(enc("x"))).rejects.toMatchObject({
      code: "NOT_LEADER",
      leaderHint: { id: leader.id },
    });
    const d = cluster();
    const dLeader = await electedLeader(d);
    const dFollower = [...d.nodes.values()].find((n) => !n.isLeader)!;
    await d.clock.advance(200);
    await expect(dFollower.propose(enc("x"), { leaderOnly: true })).rejects.toMatchObject({
      code: "NOT_LEADER",
      leaderHint: { id: dLeader.id },
    });
    // The leader itself takes leader-only proposals.
    const own = dLeader.propose(enc("y"), { leaderOnly: true });
    await d.clock.advance(50);
    expect(await own).toBe(1);
  });

  it("a restarted follower never takes an entry its previous life forwarded for a new caller", async () => {
    const c = cluster();
    await electedLeader(c);
    const follower = [...c.nodes.values()].find((n) => !n.isLeader)!;
    await c.clock.advance(200);
    // Forwarded, appended by the leader, but the follower never hears back in this life.
    c.network.dropIf = (m) => m.to === follower.id;
    const lost = follower.propose(enc("old"), { timeoutMs: 500 });
    const lostOutcome = expect(lost).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await c.clock.advance(100);
    // What survives the crash: its log, as it was (the forwarded entry is on the leader only).
    const old = c.stores.get(follower.id)!;
    const disk = new MemoryLogStore({ confState: voters });
    await disk.save({
      entries: old.entries(old.firstIndex(), old.lastIndex() + 1, Number.MAX_SAFE_INTEGER),
      hardState: old.initialState().hardState,
    });
    const stopped = follower.stop();
    await c.clock.advance(10);
    await stopped;
    await lostOutcome;
    c.network.dropIf = () => false;
    // The new life replays its log and gets the rest, "old" included, from the leader.
    const machine = new ListMachine();
    const reborn = new RaftNode<number>({
      id: follower.id,
      logStore: disk,
      stateMachine: machine,
      transport: c.network.transport(follower.id),
      clock: c.clock,
      random: new SeededRandom(follower.id + 100),
    });
    // It learns the leader from heartbeats but gets no entries yet, so "new" is forwarded
    // before it has applied "old": both carry sequence number 1, in different lives.
    c.network.dropIf = (m) => m.to === follower.id && m.type === MessageType.App;
    reborn.start();
    await c.clock.advance(300);
    expect(reborn.leader).not.toBe(0);
    expect(machine.items).toEqual([]);
    const fresh = reborn.propose(enc("new"));
    await c.clock.advance(50);
    c.network.dropIf = () => false;
    await c.clock.advance(500);
    expect(machine.items).toEqual(["old", "new"]);
    expect(await fresh).toBe(2);
  });

  it("serves linearizable reads on leader and followers, sharing rounds", async () => {
    const c = cluster();
    const leader = await electedLeader(c);
    const write = leader.propose(enc("v1"));
    await c.clock.advance(10);
    await write;
    const follower = [...c.nodes.values()].find((n) => !n.isLeader)!;
    const reads = Promise.all([
      leader.read((m) => (m as ListMachine).items.length),
      leader.read((m) => (m as ListMachine).items.length),
      follower.read((m) => (m as ListMachine).items.at(-1)),
    ]);
    await c.clock.advance(300);
    expect(await reads).toEqual([1, 1, "v1"]);
  });

  it("times out a proposal that cannot commit, and cancels on abort", async () => {
    const c = cluster();
    const leader = await electedLeader(c);
    c.network.dropIf = (m) => m.from === leader.id || m.to === leader.id;
    const timedOut = leader.propose(enc("lost?"), { timeoutMs: 300 });
    const controller = new AbortController();
    const cancelled = leader.propose(enc("cancel me"), { signal: controller.signal });
    controller.abort();
    await c.clock.advance(400);
    await expect(timedOut).rejects.toMatchObject({ code: "TIMEOUT" });
    await expect(cancelled).rejects.toMatchObject({ code: "CANCELLED" });
  });

  it("takes snapshots, compacts, and recovers from the log store on restart", async () => {
    const c = cluster({ snapshotEveryEntries: 5 });
    const leader = await electedLeader(c);
    for (let i = 0; i < 12; i++) {
      const p = leader.propose(enc(`e${i}`));
      await c.clock.advance(10);
      await p;
    }
    await c.clock.advance(300);
    const store = c.stores.get(leader.id)!;
    expect(store.snapshot().metadata.index).toBeGreaterThan(0);
    const restarted = new RaftNode<number>({
      id: leader.id,
      logStore: store,
      stateMachine: new ListMachine(),
      transport: new LoopbackNetwork().transport(leader.id),
      clock: c.clock,
      random: new SeededRandom(9),
    });
    const machine = restarted.readStale((m) => m as ListMachine);
    // The snapshot is restored at construction; the rest replays once the node runs.
    expect(machine.items.length).toBe(store.snapshot().metadata.index - 1);
    restarted.start();
    await c.clock.advance(100);
    expect(machine.items).toEqual(Array.from({ length: 12 }, (_, i) => `e${i}`));
  });

  it("tells the state machine which replayed entries hold stable data (the store's word for it)", async () => {
    const c = cluster({});
    const leader = await electedLeader(c);
    for (let i = 0; i < 6; i++) {
      const p = leader.propose(enc(`e${i}`));
      await c.clock.advance(10);
      await p;
    }
    await c.clock.advance(300);
    const store = c.stores.get(leader.id)!;
    const stableThrough = store.lastIndex() - 2;
    const stable = new Map<number, boolean | undefined>();
    class RecordingMachine extends ListMachine {
      override apply(entry: AppliedEntry): number {
        stable.set(entry.index, entry.stableData);
        return super.apply(entry);
      }
    }
    const restarted = new RaftNode<number>({
      id: leader.id,
      // As a WalLogStore reports the committed entries it read back from disk.
      logStore: new Proxy(store, {
        get: (target, property) =>
          property === "stableDataThroughIndex"
            ? stableThrough
            : (Reflect.get(target, property, target) as unknown),
      }),
      stateMachine: new RecordingMachine(),
      transport: new LoopbackNetwork().transport(leader.id),
      clock: c.clock,
      random: new SeededRandom(9),
    });
    restarted.start();
    await c.clock.advance(100);
    expect(stable.size).toBeGreaterThanOrEqual(6);
    for (const [index, flag] of stable) expect(flag, `entry ${index}`).toBe(index <= stableThrough);
  });

  it("takes a snapshot after enough bytes even when few entries were applied", async () => {
    const c = cluster({ snapshotEveryBytes: 3000 });
    const leader = await electedLeader(c);
    const store = c.stores.get(leader.id)!;
    for (let i = 0; i < 3; i++) {
      const p = leader.propose(new Uint8Array(1000).fill(65 + i));
      await c.clock.advance(10);
      await p;
    }
    // Three 1000-byte commands reach the 3000-byte threshold; the entry count (10000) does not.
    expect(store.snapshot().metadata.index).toBe(leader.status().applied);
  });

  it("spaces snapshots by the state's size: the log since the last one must reach its size", async () => {
    const c = cluster({ snapshotMinBytes: 1000, snapshotEveryBytes: 1_000_000 });
    const leader = await electedLeader(c);
    for (let i = 0; i < 10; i++) {
      const p = leader.propose(new Uint8Array(1000).fill(65 + i));
      await c.clock.advance(10);
      await p;
    }
    // Snapshots (a JSON list of the commands, a few bytes over 1000 per command) after commands
    // 1, 3 and 7: each waits for as many log bytes as the last one held. A fixed 1000-byte
    // cadence would take 10.
    expect(leader.status().snapshotsTaken).toBe(3);
    // 1 + 3 + 7 commands written, about 11 KB; the fixed cadence would write 55.
    expect(leader.status().snapshotBytesWritten).toBeGreaterThan(11 * 1000);
    expect(leader.status().snapshotBytesWritten).toBeLessThan(12 * 1000);
  });

  it("streams a captured snapshot to a store that takes pieces, and outlives a stream refused as out of date", async () => {
    const c = cluster({
      snapshotEveryEntries: 20,
      machineFor: (clock) => new SlicedListMachine(clock, 6, 1),
    });
    const leader = await electedLeader(c);
    const store = c.stores.get(leader.id)!;
    const committed: Uint8Array[] = [];
    let refused = 0;
    // The first stream finds a newer snapshot installed (as a leader's can be, meanwhile).
    Object.assign(store, {
      beginSnapshot: async (
        index: number,
        confState: ConfState,
        sizeBytes: number,
      ): Promise<SnapshotWriter> => {
        if (refused++ === 0) throw new SnapshotOutOfDateError("a newer snapshot was installed");
        const pieces: Uint8Array[] = [];
        return {
          write: async (piece) => void pieces.push(piece.slice()),
          commit: async () => {
            const data = Buffer.concat(pieces);
            expect(data.length).toBe(sizeBytes);
            committed.push(data);
            return (await store.saveSnapshot(index, confState, data)).metadata;
          },
          abort: async () => undefined,
        };
      },
    });
    for (let i = 0; i < 60; i++) {
      const p = leader.propose(enc(`e${i}`));
      await c.clock.advance(10);
      await p;
    }
    await c.clock.advance(1000);

    expect(refused).toBeGreaterThan(1);
    expect(leader.status().stopped).toBe(false);
    expect(committed.length).toBeGreaterThan(0);
    // The store's snapshot is the last one streamed, byte for byte.
    expect(Buffer.from(store.snapshot().data).equals(committed[committed.length - 1]!)).toBe(true);
    expect(leader.status().snapshotsTaken).toBe(committed.length);
  });

  it("encodes a captured snapshot between turns: applies, heartbeats and proposals go on, and the snapshot is the state at the capture", async () => {
    // 60 slices of 3 ms each: 180 ms of encoding, longer than a heartbeat interval, which in
    // one turn would hold every timer and message back.
    const encodingOf = (machine: SlicedListMachine) =>
      machine.captures.find((x) => x.sliced > 0 && !x.complete && !x.closed);
    /** Heartbeats sent while the sender's snapshot was part-way: how many slices it had. */
    const heartbeatsWhileEncoding: number[] = [];
    const c = cluster({
      snapshotEveryEntries: 20,
      machineFor: (clock) => new SlicedListMachine(clock, 60, 3),
      transportFor: (id, transport) => ({
        ...transport,
        send: (messages) => {
          const capture = encodingOf(c.machines.get(id) as SlicedListMachine);
          for (const m of messages) {
            if (m.type === MessageType.Heartbeat && capture !== undefined) {
              heartbeatsWhileEncoding.push(capture.sliced);
            }
          }
          transport.send(messages);
        },
      }),
    });
    const leader = await electedLeader(c);
    const machine = c.machines.get(leader.id) as SlicedListMachine;
    const encodingNow = () => encodingOf(machine);

    const appliedWhileEncoding: number[] = [];
    for (let i = 0; i < 40; i++) {
      const p = leader.propose(enc(`e${i}`));
      await c.clock.advance(10);
      await p;
      if (encodingNow() !== undefined) appliedWhileEncoding.push(i);
    }
    await c.clock.advance(1000);

    const first = machine.captures[0];
    expect(first?.complete).toBe(true);
    // Proposals committed and heartbeats went out while slices were still to come.
    expect(appliedWhileEncoding.length).toBeGreaterThan(5);
    expect(heartbeatsWhileEncoding.length).toBeGreaterThan(0);
    expect(heartbeatsWhileEncoding.some((sliced) => sliced < 60)).toBe(true);
    expect(leader.isLeader).toBe(true);
    // The snapshot written is the state at its capture (not what was applied by the end), and
    // the log was compacted at that index.
    const store = c.stores.get(leader.id)!;
    const written = store.snapshot();
    expect(written.metadata.index).toBeGreaterThan(0);
    const restored = new ListMachine();
    restored.restore(written.data);
    expect(restored.items).toEqual(machine.items.slice(0, restored.items.length));
    expect(machine.captures.some((x) => x.atItems === restored.items.length)).toBe(true);
    // Index 1 is the leader's empty entry: the snapshot's index is the one applied at the capture.
    expect(restored.items.length).toBe(written.metadata.index - 1);
    expect(machine.items.length).toBe(40);
  });

  it("hands the event loop back when applying a backlog takes longer than its turn budget", async () => {
    const c = cluster({ raft: { maxCommittedSizePerReadyBytes: 2000 } });
    const leader = await electedLeader(c);
    // Every apply takes 2 ms of the node's time: a Ready of two entries uses most of a turn.
    for (const machine of c.machines.values()) {
      const apply = machine.apply.bind(machine);
      machine.apply = (entry) => {
        c.clock.spend(2);
        return apply(entry);
      };
    }
    const writes = Array.from({ length: 40 }, (_, i) =>
      leader.propose(new Uint8Array(1000).fill(65 + (i % 26))),
    );
    await c.clock.advance(500);
    await Promise.all(writes);
    await c.clock.advance(500);
    for (const m of c.machines.values()) expect(m.items.length).toBe(40);
    expect(leader.status().readyTurnsYielded).toBeGreaterThan(0);
    expect(leader.isLeader).toBe(true);
  });

  it("refuses empty and oversized commands, and rejects pending work on stop", async () => {
    const c = cluster();
    const leader = await electedLeader(c);
    await expect(leader.propose(new Uint8Array(0))).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await expect(leader.propose(new Uint8Array(2 * 1024 * 1024))).rejects.toMatchObject({
      code: "TOO_LARGE",
    });
    c.network.dropIf = () => true;
    const pending = leader.propose(enc("never"));
    await c.clock.advance(1);
    await leader.stop();
    await expect(pending).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });

  it("on a fatal error closes its transport and log store (so the process can exit), and stop() waits for that", async () => {
    const clock = new ManualClock();
    const store = new MemoryLogStore({ confState: { ...voters, voters: [1] } });
    let transportClosed = false;
    let storeClosed = false;
    const closeStore = store.close.bind(store);
    store.close = async () => {
      storeClosed = true;
      await closeStore();
    };
    let failing = false;
    const save = store.save.bind(store);
    store.save = (update) => (failing ? Promise.reject(new Error("disk on fire")) : save(update));
    const fatal: Error[] = [];
    const node = new RaftNode<number>({
      id: 1,
      logStore: store,
      stateMachine: new ListMachine(),
      transport: {
        send: () => undefined,
        listen: () => undefined,
        close: async () => {
          transportClosed = true;
        },
      },
      clock,
      random: new SeededRandom(1),
      onFatal: (error) => fatal.push(error),
    });
    node.start();
    for (let i = 0; i < 100 && !node.isLeader; i++) await clock.advance(100);
    expect(node.isLeader).toBe(true);
    failing = true;
    await expect(node.propose(enc("x"))).rejects.toThrow("disk on fire");
    expect(fatal.map((e) => e.message)).toEqual(["disk on fire"]);
    await clock.advance(10);
    expect(transportClosed).toBe(true);
    expect(storeClosed).toBe(true);
    await node.stop();
    expect(node.status().stopped).toBe(true);
  });
});
