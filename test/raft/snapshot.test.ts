/**
 * Log compaction and InstallSnapshot (Raft paper §7): a leader that has discarded the entries a
 * follower needs sends its snapshot instead, and the application reports how sending it went
 * (etcd's ReportSnapshot). Each test names the rule it checks and runs set up → act → check.
 */
import { describe, expect, it } from "vitest";
import type { Snapshot } from "../../src/raft/types.js";
import { bytes, TestCluster, text } from "./cluster.js";
import { LoneNode, MT, Network, PAPER_CONFIG } from "./scenario-helpers.js";

/**
 * Node 3 crashes early; the leader (1) commits 20 more entries, snapshots and compacts its log
 * at its applied index, then commits three more ("after0".."after2"). 3 is restarted but nothing
 * has been delivered to it yet.
 */
function farBehindFollower(): { c: TestCluster; net: Network; snapIndex: number } {
  const c = new TestCluster({ voters: [1, 2, 3] });
  const net = new Network(c);
  c.elect(1);
  c.propose(1, "before-crash");
  c.crash(3);
  for (let i = 0; i < 20; i++) c.propose(1, `p${i}`);
  const storage = c.node(1).storage;
  const snapIndex = c.node(1).appliedIndex;
  storage.createSnapshot(snapIndex, undefined, bytes(`state@${snapIndex}`));
  storage.compact(snapIndex);
  for (let i = 0; i < 3; i++) c.propose(1, `after${i}`);
  c.restart(3);
  expect(c.raft(1).raftLog.firstIndex()).toBeGreaterThan(c.raft(3).raftLog.lastIndex() + 1);
  net.clear();
  return { c, net, snapIndex };
}

/** Commands node 3 applied from entries after `snapIndex` (what it got beyond the snapshot). */
function appliedAfter(c: TestCluster, snapIndex: number): string[] {
  return c
    .node(3)
    .applied.filter((e) => e.index > snapIndex)
    .map((e) => text(e.data));
}

describe("§7 InstallSnapshot to a follower that is too far behind", () => {
  // §7: "the leader must occasionally send snapshots to followers that lag behind. This happens
  // when the leader has already discarded the next log entry that it needs to send to a follower."
  it("§7: the leader sends its snapshot; the follower installs it and then receives the entries after it", () => {
    const { c, net, snapIndex } = farBehindFollower();

    c.tick(1, 1); // a heartbeat round reaches 3
    c.stabilize();

    const snaps = net.messages((m) => m.type === MT.Snap && m.to === 3);
    expect(snaps).toHaveLength(1);
    expect(snaps[0]?.snapshot?.metadata.index).toBe(snapIndex);
    const installed = c.node(3).storage.snapshot();
    expect(installed.metadata.index).toBe(snapIndex);
    expect(text(installed.data)).toBe(`state@${snapIndex}`);
    expect(c.raft(3).raftLog.firstIndex()).toBe(snapIndex + 1);
    // The entries after the snapshot are applied one by one; the log matches the leader's.
    expect(appliedAfter(c, snapIndex)).toEqual(["after0", "after1", "after2"]);
    expect(c.node(3).appliedIndex).toBe(c.node(1).appliedIndex);
    expect(c.logEntries(3)).toEqual(c.logEntries(1));
    expect(c.node(1).raw.status().progress.get(3)).toMatchObject({
      state: "replicate",
      match: c.raft(1).raftLog.lastIndex(),
    });
  });

  // etcd ReportSnapshot: the transport reports a delivered snapshot; the leader resumes probing
  // after it even if the follower's acknowledgement was lost.
  it("§7: after a snapshot 'finish' report the leader resumes replication even though the follower's ack was lost", () => {
    const { c, net, snapIndex } = farBehindFollower();
    net.block = (m) => m.type === MT.AppResp && m.from === 3 && !m.reject && m.index >= snapIndex;
    c.tick(1, 1);
    c.stabilize();
    expect(c.node(3).storage.snapshot().metadata.index).toBe(snapIndex);
    expect(c.node(1).raw.status().progress.get(3)?.state).toBe("snapshot");
    const appliedBefore = c.appliedCommands(3);

    // Without a report the leader waits: heartbeats flow but nothing else is sent to 3.
    net.clear();
    c.tick(1, 3);
    c.stabilize();
    expect(net.messages((m) => m.type === MT.Heartbeat && m.to === 3).length).toBeGreaterThan(0);
    expect(net.messages((m) => m.to === 3 && m.type !== MT.Heartbeat)).toEqual([]);
    expect(c.appliedCommands(3)).toEqual(appliedBefore);

    c.node(1).raw.reportSnapshot(3, "finish");
    expect(c.node(1).raw.status().progress.get(3)?.state).toBe("probe");
    net.heal();
    c.tick(1, 1);
    c.stabilize();

    expect(net.messages((m) => m.type === MT.Snap)).toEqual([]);
    expect(appliedAfter(c, snapIndex)).toEqual(["after0", "after1", "after2"]);
    expect(c.node(1).raw.status().progress.get(3)?.state).toBe("replicate");

    c.propose(1, "later");
    expect(appliedAfter(c, snapIndex)).toEqual(["after0", "after1", "after2", "later"]);
  });

  it("§7: after a snapshot 'failure' report the leader sends the snapshot again", () => {
    const { c, net, snapIndex } = farBehindFollower();
    net.block = (m) => m.type === MT.Snap; // the first snapshot is lost in transit
    c.tick(1, 1);
    c.stabilize();
    expect(net.messages((m) => m.type === MT.Snap)).toHaveLength(1);
    expect(c.node(3).storage.snapshot().metadata.index).toBe(0);

    c.tick(1, 3);
    c.stabilize();
    expect(net.messages((m) => m.type === MT.Snap)).toHaveLength(1);

    c.node(1).raw.reportSnapshot(3, "failure");
    expect(c.node(1).raw.status().progress.get(3)?.state).toBe("probe");
    net.heal();
    c.tick(1, 1);
    c.stabilize();

    const snaps = net.messages((m) => m.type === MT.Snap && m.to === 3);
    expect(snaps).toHaveLength(2);
    expect(c.node(3).storage.snapshot().metadata.index).toBe(snapIndex);
    expect(appliedAfter(c, snapIndex)).toEqual(["after0", "after1", "after2"]);
  });
});

describe("one snapshot in flight per follower", () => {
  // An append response can move the follower on to Replicate before the transport has reported
  // how the snapshot went; if it then falls behind the compacted log again, a second snapshot
  // must wait for that report (a storm of full snapshots to one slow follower otherwise).
  it("a second snapshot waits for the first one's report, even after the follower moved on to replicate", () => {
    const { c, net, snapIndex } = farBehindFollower();
    c.tick(1, 1);
    c.stabilize();
    expect(net.messages((m) => m.type === MT.Snap && m.to === 3)).toHaveLength(1);
    expect(c.node(1).raw.status().progress.get(3)?.state).toBe("replicate");

    // 3 falls behind again and the leader compacts past it.
    net.block = (m) => m.to === 3 || m.from === 3;
    for (let i = 0; i < 5; i++) c.propose(1, `more${i}`);
    const storage = c.node(1).storage;
    const secondIndex = c.node(1).appliedIndex;
    storage.createSnapshot(secondIndex, undefined, bytes(`state@${secondIndex}`));
    storage.compact(secondIndex);
    net.heal();
    net.clear();
    c.node(1).raw.reportUnreachable(3); // back to probing, from entries now compacted
    c.tick(1, 3);
    c.stabilize();
    expect(net.messages((m) => m.type === MT.Snap)).toEqual([]);
    expect(c.node(3).appliedIndex).toBeLessThan(secondIndex);

    // The first snapshot's report frees the way for the second.
    c.node(1).raw.reportSnapshot(3, "finish");
    c.tick(1, 1);
    c.stabilize();
    const snaps = net.messages((m) => m.type === MT.Snap && m.to === 3);
    expect(snaps).toHaveLength(1);
    expect(snaps[0]?.snapshot?.metadata.index).toBe(secondIndex);
    expect(snapIndex).toBeLessThan(secondIndex);
    expect(c.node(3).appliedIndex).toBe(c.node(1).appliedIndex);
  });
});

describe("§7 a follower receiving a snapshot", () => {
  function snapshotAt(index: number, term: number): Snapshot {
    return {
      metadata: {
        index,
        term,
        confState: {
          voters: [1, 2, 3],
          learners: [],
          votersOutgoing: [],
          learnersNext: [],
          autoLeave: false,
        },
      },
      data: bytes(`state@${index}`),
    };
  }

  // §7: "Usually the snapshot will contain new information not already in the recipient's log. In
  // this case, the follower discards its entire log; it is all superseded by the snapshot and may
  // possibly have uncommitted entries that conflict with the snapshot."
  it("§7: a snapshot that conflicts with the log replaces the whole log", () => {
    const node = new LoneNode({
      id: 1,
      voters: [1, 2, 3],
      logTerms: [1, 1, 2, 2],
      config: PAPER_CONFIG,
      hardState: { term: 3 },
    });

    const out = node.step({ type: MT.Snap, from: 2, term: 3, snapshot: snapshotAt(3, 3) });

    expect(out).toContainEqual(expect.objectContaining({ type: MT.AppResp, to: 2, index: 3 }));
    expect(node.storage.snapshot().metadata).toMatchObject({ index: 3, term: 3 });
    expect(node.raft.raftLog.lastIndex()).toBe(3);
    expect(node.raft.raftLog.firstIndex()).toBe(4);
    expect(node.raft.raftLog.committed).toBe(3);
  });

  // §7: "If instead the follower receives a snapshot that describes a prefix of its log …
  // entries following the snapshot are still valid and must be retained."
  it("§7: a snapshot describing a prefix of the log keeps the entries after it and only advances the commit index", () => {
    const node = new LoneNode({
      id: 1,
      voters: [1, 2, 3],
      logTerms: [1, 1, 1, 1, 1],
      config: PAPER_CONFIG,
      hardState: { term: 1, commit: 2 },
    });

    const out = node.step({ type: MT.Snap, from: 2, term: 1, snapshot: snapshotAt(3, 1) });

    expect(out).toContainEqual(expect.objectContaining({ type: MT.AppResp, to: 2, index: 3 }));
    expect(node.logTerms()).toEqual([1, 1, 1, 1, 1]);
    expect(node.raft.raftLog.committed).toBe(3);
    expect(node.storage.snapshot().metadata.index).toBe(0);
  });

  it("§7: a snapshot older than the commit index is ignored and answered with the commit index", () => {
    const node = new LoneNode({
      id: 1,
      voters: [1, 2, 3],
      logTerms: [1, 1, 1, 1],
      config: PAPER_CONFIG,
      hardState: { term: 1, commit: 4 },
    });

    const out = node.step({ type: MT.Snap, from: 2, term: 1, snapshot: snapshotAt(3, 1) });

    expect(out).toContainEqual(expect.objectContaining({ type: MT.AppResp, to: 2, index: 4 }));
    expect(node.logTerms()).toEqual([1, 1, 1, 1]);
    expect(node.storage.snapshot().metadata.index).toBe(0);
  });
});
