/**
 * "Reads the previous version" of every on-disk format, tested against files kept in
 * `fixtures/`. Each format below has had one version so far (format 1), so there is no previous
 * version to read yet: these fixtures, written by `write-fixtures.ts` with the release that
 * introduced peer protocol 2, are the current version, and a release that bumps a format keeps
 * them beside its new ones and must still pass this test. (The cluster state machine's snapshot
 * format inside the snapshot and backup files is at version 2 and reads version 1: see
 * `src/statemachine/cluster/cluster-state-machine.test.ts`.)
 *
 * | file                                 | format                                      |
 * | ------------------------------------ | ------------------------------------------- |
 * | `raft/wal-*.log`                     | WAL segment 1 (`storage/wal-segment.ts`)    |
 * | `raft/snap-*.snap`                    | snapshot file 1 (`storage/snapshot-file.ts`) |
 * | `node.json`                          | 1 (`cli/node/node-config.ts`)               |
 * | `members.json`                       | 1 (`cli/node/member-store.ts`), with and without `clusterProtocolVersion` |
 * | `operator snapshot save` backup file | 1 (`cli/operator/backup-file.ts`)           |
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PersistentMemberDirectory } from "../../src/cli/node/member-store.js";
import { readNodeConfig } from "../../src/cli/node/node-config.js";
import { JsonLogger } from "../../src/cli/log.js";
import { decodeBackup } from "../../src/cli/operator/backup-file.js";
import { ClusterStateMachine } from "../../src/statemachine/cluster/cluster-state-machine.js";
import { NodeFileSystem } from "../../src/storage/node-fs.js";
import { WalLogStore } from "../../src/storage/wal-log-store.js";
import { FIXTURE_CONF_STATE, FIXTURES, fixtureCommands } from "./fixture-data.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A scratch copy of `name` from the fixtures (readers may rewrite what they read). */
function copyOf(name: string, as = name): string {
  const dir = mkdtempSync(join(tmpdir(), "blixard-formats-"));
  dirs.push(dir);
  cpSync(join(FIXTURES, name), join(dir, as), { recursive: true });
  return dir;
}

const quiet = new JsonLogger("warn", {}, () => undefined);
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

describe("on-disk formats of the current version, from fixtures", () => {
  it("a raft directory: WAL segment format 1 and snapshot file format 1", async () => {
    const dir = copyOf("raft");
    const store = await WalLogStore.open(join(dir, "raft"), { fs: new NodeFileSystem() });
    try {
      expect(store.initialState().hardState).toEqual({ term: 1, vote: 1, commit: 4 });
      expect(store.initialState().confState).toEqual(FIXTURE_CONF_STATE);
      const snapshot = store.snapshot();
      expect(snapshot.metadata.index).toBe(2);
      const machine = new ClusterStateMachine();
      machine.restore(snapshot.data);
      expect(text(machine.read("k2")!.value)).toBe("v2");
      expect(machine.read("k3")).toBeNull();
      const after = store.entries(3, 5, Number.MAX_SAFE_INTEGER);
      expect(after.map((e) => e.data)).toEqual(fixtureCommands().slice(2));
    } finally {
      await store.close();
    }
  });

  it("node.json format 1", async () => {
    const config = await readNodeConfig(copyOf("node.json"));
    expect(config).toMatchObject({ version: 1, id: 2, clusterId: "fixture" });
    expect(config!.initialMembers.map((m) => m.id)).toEqual([1, 2, 3]);
  });

  it("members.json format 1, as 0.1.0 wrote it and with the cluster's protocol version", async () => {
    const old = await PersistentMemberDirectory.load(
      copyOf("members-0.1.0.json", "members.json"),
      [],
      quiet,
    );
    expect(old.entries().map(([id]) => id)).toEqual([1, 2, 3]);
    expect(old.get(3)).toEqual({
      raftAddress: "127.0.0.1:7003",
      apiAddress: "http://127.0.0.1:8003/",
    });
    expect(old.clusterProtocolVersion).toBe(1);
    const dir = copyOf("members-protocol-2.json", "members.json");
    const moved = await PersistentMemberDirectory.load(dir, [], quiet);
    expect(moved.clusterProtocolVersion).toBe(2);
    // A rewrite keeps it (and a later change never lowers it).
    moved.set(4, { raftAddress: "127.0.0.1:7004", apiAddress: "http://127.0.0.1:8004/" });
    moved.setClusterProtocolVersion(1);
    await moved.flush();
    const written = JSON.parse(readFileSync(join(dir, "members.json"), "utf8")) as {
      version: number;
      clusterProtocolVersion: number;
      members: unknown[];
    };
    expect(written).toMatchObject({ version: 1, clusterProtocolVersion: 2 });
    expect(written.members).toHaveLength(4);
  });

  it("the backup file format 1", () => {
    const backup = decodeBackup(readFileSync(join(FIXTURES, "backup.blixsnap")));
    expect(backup.header).toMatchObject({ format: 1, clusterId: "fixture", index: 2 });
    const machine = new ClusterStateMachine();
    machine.restore(backup.data);
    expect(text(machine.read("k1")!.value)).toBe("v1");
  });
});
