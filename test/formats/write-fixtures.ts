/**
 * Writes the on-disk format fixtures of `on-disk-formats.test.ts` with this release's code:
 * `npx tsx test/formats/write-fixtures.ts`. Run it only when a format's version is bumped, into
 * a directory named after the new version, and keep the old fixtures: they are what "reads the
 * previous version" is tested against.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeBackup } from "../../src/cli/operator/backup-file.js";
import { writeNodeConfig } from "../../src/cli/node/node-config.js";
import { EntryType } from "../../src/raft/types.js";
import { ClusterStateMachine } from "../../src/statemachine/cluster/cluster-state-machine.js";
import { NodeFileSystem } from "../../src/storage/node-fs.js";
import { WalLogStore } from "../../src/storage/wal-log-store.js";
import { FIXTURES, fixtureCommands, FIXTURE_CONF_STATE } from "./fixture-data.js";

const root = FIXTURES;
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });

// node.json (format 1) and members.json (format 1, as 0.1.0 wrote it and with the cluster's protocol).
await writeNodeConfig(root, {
  version: 1,
  id: 2,
  clusterId: "fixture",
  peerListen: { host: "127.0.0.1", port: 7002 },
  apiListen: { host: "127.0.0.1", port: 8002 },
  initialMembers: [1, 2, 3].map((id) => ({
    id,
    peerAddress: `127.0.0.1:${7000 + id}`,
    apiAddress: `http://127.0.0.1:${8000 + id}/`,
  })),
});
const members = [1, 2, 3].map((id) => ({
  id,
  raftAddress: `127.0.0.1:${7000 + id}`,
  apiAddress: `http://127.0.0.1:${8000 + id}/`,
}));
writeFileSync(
  join(root, "members-0.1.0.json"),
  `${JSON.stringify({ version: 1, members }, null, 2)}\n`,
);
writeFileSync(
  join(root, "members-protocol-2.json"),
  `${JSON.stringify({ version: 1, members, clusterProtocolVersion: 2 }, null, 2)}\n`,
);

// A raft directory: WAL segment format 1, a snapshot file of format 1 holding a cluster state
// machine snapshot, and entries after it.
const machine = new ClusterStateMachine();
const commands = fixtureCommands();
commands.slice(0, 2).forEach((data, i) => machine.apply({ index: i + 1, term: 1, data }));
const store = await WalLogStore.open(join(root, "raft"), {
  fs: new NodeFileSystem(),
  confState: FIXTURE_CONF_STATE,
});
const entries = commands.map((data, i) => ({
  term: 1,
  index: i + 1,
  type: EntryType.Normal,
  data,
}));
await store.save({ entries, hardState: { term: 1, vote: 1, commit: 4 } }, { sync: true });
const snapshot = await store.saveSnapshot(2, FIXTURE_CONF_STATE, machine.snapshot());
await store.close();

// A backup file (format 1) of the same state.
const data = snapshot.data;
const { createHash } = await import("node:crypto");
writeFileSync(
  join(root, "backup.blixsnap"),
  encodeBackup({
    header: {
      format: 1,
      clusterId: "fixture",
      index: 2,
      term: 1,
      takenBy: 1,
      version: "0.1.0",
      createdAt: "2026-12-06T00:00:00.000Z",
      members: members.map((m) => ({ ...m, suffrage: "voter" as const })),
      dataBytes: data.byteLength,
      dataSha256: createHash("sha256").update(data).digest("hex"),
    },
    data,
  }),
);
