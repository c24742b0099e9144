/**
 * Fault tests on real processes: three `blixard node start` processes on 127.0.0.1 with real
 * data directories, driven through the HTTP API and the SDK, and hurt with signals by pid
 * (SIGKILL the leader under load, SIGSTOP/SIGCONT a follower, SIGTERM and restart everything)
 * and with bad input (HTTP, peer handshakes, a non-member node, foreign data directories).
 * Every wait is a poll with a deadline; every process is killed after each test, pass or fail,
 * and a failed test prints the tail of every node's log (and keeps the full logs on disk).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { create } from "@bufbuild/protobuf";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { BlixardClient } from "../../src/client/index.js";
import type { ListResult } from "../../src/client/types.js";
import type { Consistency } from "../../src/api/schema/index.js";
import { decodeFrame, encodeFrame, frame, PROTOCOL_VERSION } from "../../src/transport/codec.js";
import { HelloSchema } from "../../src/transport/gen/blixard/raft/v1/raft_pb.js";
import { ensureBuilt } from "../cli/helpers.js";
import { http, ProcessCluster, until, withDeadline } from "./process-cluster.js";

/** Clusters of the running test (destroyed after it) and of the running describe block. */
const perTest: ProcessCluster[] = [];
const shared: ProcessCluster[] = [];

async function newCluster(
  name: string,
  scope: ProcessCluster[] = perTest,
): Promise<ProcessCluster> {
  const cluster = await ProcessCluster.create({ size: 3, name: `blixard-faults-${name}` });
  scope.push(cluster);
  return cluster;
}

async function destroyAll(clusters: ProcessCluster[]): Promise<void> {
  const all = clusters.splice(0);
  await Promise.all(all.map((c) => c.destroy()));
}

beforeAll(ensureBuilt);

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    for (const cluster of [...perTest, ...shared]) {
      console.log(`node logs (full logs kept in ${cluster.saveLogs()}):\n${cluster.logs(60)}`);
    }
  });
});

afterEach(() => destroyAll(perTest));
afterAll(() => destroyAll(shared));

/** Every key under `prefix`, page by page, through `client`. */
async function listAll(
  client: BlixardClient,
  prefix: string,
  consistency: Consistency = "linearizable",
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  let start: string | undefined;
  for (;;) {
    const page: ListResult = await client.list({
      prefix,
      limit: 500,
      consistency,
      ...(start === undefined ? {} : { start }),
    });
    for (const e of page.entries) found.set(e.key, e.valueText ?? "<bytes>");
    if (!page.more || page.nextStart === undefined) return found;
    start = page.nextStart;
  }
}

/** Waits until node `id` has applied at least `index`. */
async function waitApplied(cluster: ProcessCluster, id: number, index: number): Promise<void> {
  let seen: number | undefined;
  await until(
    async () => {
      seen = (await cluster.status(id, 500))?.appliedIndex;
      return seen !== undefined && seen >= index ? true : undefined;
    },
    () => `node ${id} to apply index ${index} (at ${seen})`,
  );
}

/** The leader's commit index now. */
async function leaderCommit(cluster: ProcessCluster, leader: number): Promise<number> {
  const status = await cluster.status(leader);
  if (status === undefined) throw new Error(`leader ${leader} does not answer`);
  return status.commitIndex;
}

describe("a 3-node cluster of real processes", () => {
  it("elects a leader; a write through any node is read linearizably through every node", async () => {
    const cluster = await newCluster("bootstrap");
    cluster.startAll();
    const leader = await cluster.waitForLeader();
    expect(cluster.nodes.map((n) => n.id)).toContain(leader);

    // Raw HTTP (no SDK leader discovery): a follower forwards the write to the leader. Each write
    // through node A is read right away through every node B with the default (linearizable)
    // consistency, which must see it.
    for (const writer of cluster.nodes) {
      const key = `via-${writer.id}`;
      const put = await http(writer.apiUrl, "PUT", `/v1/kv/${key}`, {
        body: JSON.stringify({ value: `written through ${writer.id}` }),
      });
      expect(put.status, JSON.stringify(put.body)).toBe(200);
      if (writer.id !== leader) {
        expect(put.headers.get("blixard-leader-address")).toBe(cluster.node(leader).apiUrl);
      }
      for (const reader of cluster.nodes) {
        const get = await http(reader.apiUrl, "GET", `/v1/kv/${key}`);
        expect(get.status, `read of ${key} through ${reader.id}`).toBe(200);
        expect(get.body).toMatchObject({ entry: { key, value: `written through ${writer.id}` } });
      }
    }

    // The SDK, given one follower only, works as well.
    const follower = cluster.nodes.find((n) => n.id !== leader)!;
    const client = cluster.client([follower.id]);
    await client.put("sdk", "through a follower");
    for (const n of cluster.nodes) {
      const read = await cluster.client([n.id]).get("sdk");
      expect(read?.entry.valueText).toBe("through a follower");
    }

    // Metrics: every layer reports (raft gauges, fsyncs of the WAL, per-peer traffic).
    const metrics = await http(cluster.node(leader).apiUrl, "GET", "/metrics");
    expect(metrics.status).toBe(200);
    const text = String(metrics.body);
    const sample = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? Number.NaN);
    expect(sample(/^blixard_raft_role\{role="leader"[^}]*\} (\S+)$/m)).toBe(1);
    expect(sample(/^blixard_wal_fsync_duration_seconds_count\{[^}]*\} (\S+)$/m)).toBeGreaterThan(0);
    for (const peer of cluster.nodes.filter((n) => n.id !== leader)) {
      for (const direction of ["sent", "received"]) {
        const line = new RegExp(
          `^blixard_peer_messages_total\\{[^}]*peer="${peer.id}"[^}]*direction="${direction}"[^}]*\\} (\\S+)$|` +
            `^blixard_peer_messages_total\\{[^}]*direction="${direction}"[^}]*peer="${peer.id}"[^}]*\\} (\\S+)$`,
          "m",
        ).exec(text);
        expect(Number(line?.[1] ?? line?.[2]), `${direction} ${peer.id}`).toBeGreaterThan(0);
      }
    }
  });

  it("SIGKILL of the leader under write load loses no acknowledged write", async () => {
    const cluster = await newCluster("failover");
    cluster.startAll();
    const oldLeader = await cluster.waitForLeader();

    interface Attempt {
      readonly key: string;
      readonly value: string;
      readonly startedMs: number;
      endedMs?: number;
      outcome?: "acked" | "unknown";
      error?: string;
    }
    const attempts: Attempt[] = [];
    let stop = false;
    let killedAtMs = Number.POSITIVE_INFINITY;
    const writer = async (w: number): Promise<void> => {
      const client = cluster.client(undefined, { timeoutMs: 5000, retries: 40, backoffMs: 10 });
      for (let i = 0; !stop; i++) {
        const key = `load/w${w}/${String(i).padStart(6, "0")}`;
        const attempt: Attempt = { key, value: `${w}:${i}`, startedMs: performance.now() };
        attempts.push(attempt);
        try {
          await client.put(attempt.key, attempt.value);
          attempt.outcome = "acked";
        } catch (error) {
          attempt.outcome = "unknown";
          attempt.error = (error as Error).message;
        }
        attempt.endedMs = performance.now();
      }
    };
    const acked = (): Attempt[] => attempts.filter((a) => a.outcome === "acked");
    const writers = [1, 2, 3, 4].map(writer);

    try {
      await until(() => (acked().length >= 50 ? true : undefined), "50 writes before the kill");
      const beforeKill = acked().length;
      killedAtMs = performance.now();
      cluster.signal(oldLeader, "SIGKILL");
      const survivors = cluster.nodes.map((n) => n.id).filter((id) => id !== oldLeader);
      const newLeader = await cluster.waitForLeader(survivors);
      const electedMs = performance.now() - killedAtMs;
      expect(newLeader).not.toBe(oldLeader);
      // Writes resume: plenty of writes that began after the kill are acknowledged.
      const afterKill = (): Attempt[] =>
        acked().filter((a) => a.startedMs > killedAtMs && a.endedMs !== undefined);
      await until(
        () => (afterKill().length >= 50 ? true : undefined),
        () => `50 writes after the kill (have ${afterKill().length})`,
      );
      const firstAckMs = Math.min(...afterKill().map((a) => a.endedMs!)) - killedAtMs;
      stop = true;
      await Promise.all(writers);
      const unknown = attempts.filter((a) => a.outcome === "unknown");
      console.log(
        `failover: SIGKILL of leader ${oldLeader} → leader ${newLeader} seen by both survivors ` +
          `after ${electedMs.toFixed(0)} ms; first acknowledged write begun after the kill ` +
          `${firstAckMs.toFixed(0)} ms after it. Writes: ${beforeKill} acknowledged before the ` +
          `kill, ${acked().length} in all, ${unknown.length} with unknown outcome` +
          (unknown.length > 0 ? ` (e.g. ${unknown[0]!.error})` : ""),
      );

      // Every acknowledged write is there with its value; a write of unknown outcome is there
      // with its value or absent; nothing else exists.
      const check = (found: Map<string, string>, where: string): void => {
        const missing = acked().filter((a) => found.get(a.key) !== a.value);
        expect(missing.slice(0, 5), `acknowledged writes missing or wrong ${where}`).toEqual([]);
        for (const a of unknown) {
          if (found.has(a.key)) expect(found.get(a.key), where).toBe(a.value);
        }
        const attempted = new Set(attempts.map((a) => a.key));
        expect(
          [...found.keys()].filter((k) => !attempted.has(k)),
          where,
        ).toEqual([]);
      };
      check(await listAll(cluster.client(survivors), "load/"), "on the new leader");

      // The killed node comes back from its data directory and catches up with all of it.
      cluster.start(oldLeader, "restart");
      const commit = await leaderCommit(cluster, await cluster.waitForLeader());
      await waitApplied(cluster, oldLeader, commit);
      check(
        await listAll(cluster.client([oldLeader]), "load/", "stale"),
        "on the restarted old leader (stale reads)",
      );
    } finally {
      stop = true;
      await Promise.allSettled(writers);
    }
  });

  it("a SIGSTOPped follower catches up after SIGCONT", async () => {
    const cluster = await newCluster("pause");
    cluster.startAll();
    const leader = await cluster.waitForLeader();
    const paused = cluster.nodes.find((n) => n.id !== leader)!.id;
    const live = cluster.nodes.map((n) => n.id).filter((id) => id !== paused);
    cluster.signal(paused, "SIGSTOP");
    try {
      // It really is paused: it does not answer.
      expect(await cluster.status(paused, 300)).toBeUndefined();
      const client = cluster.client(live);
      const n = 300;
      const keys = Array.from({ length: n }, (_, i) => `paused/${String(i).padStart(4, "0")}`);
      // 8 writers, in key order within each.
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          for (let i = w; i < n; i += 8) await client.put(keys[i]!, `value ${i}`);
        }),
      );
      await client.put("paused/last", "the last key");
      const commit = await leaderCommit(cluster, leader);
      expect(commit).toBeGreaterThan(n);
      cluster.signal(paused, "SIGCONT");
      await waitApplied(cluster, paused, commit);
      const onPaused = cluster.client([paused]);
      const last = await onPaused.get("paused/last", { consistency: "stale" });
      expect(last?.entry.valueText).toBe("the last key");
      const all = await listAll(onPaused, "paused/", "stale");
      expect(all.size).toBe(n + 1);
      expect(all.get(keys[n - 1]!)).toBe(`value ${n - 1}`);
      // And it is a full member again: all three agree on the leader.
      await cluster.waitForLeader();
    } finally {
      cluster.signal(paused, "SIGCONT");
    }
  });

  it("SIGTERM and restart of every node from --data-dir alone brings the state back", async () => {
    const cluster = await newCluster("restart");
    cluster.startAll();
    await cluster.waitForLeader();
    const client = cluster.client();
    const expected = new Map<string, string>();
    await Promise.all(
      Array.from({ length: 4 }, async (_, w) => {
        for (let i = w; i < 120; i += 4) {
          const key = `disk/${String(i).padStart(4, "0")}`;
          await client.put(key, `first ${i}`);
          expected.set(key, `first ${i}`);
        }
      }),
    );
    // Overwrites and deletes must come back as the last word, not the first.
    for (let i = 0; i < 120; i += 10) {
      const key = `disk/${String(i).padStart(4, "0")}`;
      await client.put(key, `second ${i}`);
      expected.set(key, `second ${i}`);
    }
    for (let i = 5; i < 120; i += 20) {
      const key = `disk/${String(i).padStart(4, "0")}`;
      expect((await client.delete(key)).deleted).toBe(true);
      expected.delete(key);
    }
    const leader = await cluster.waitForLeader();
    const commit = await leaderCommit(cluster, leader);
    for (const n of cluster.nodes) await waitApplied(cluster, n.id, commit);

    const exits = await Promise.all(cluster.nodes.map((n) => cluster.stop(n.id)));
    expect(exits).toEqual(cluster.nodes.map(() => ({ code: 0, signal: null })));

    cluster.startAll("restart");
    await cluster.waitForLeader();
    for (const n of cluster.nodes) {
      const found = await listAll(cluster.client([n.id]), "disk/");
      expect(found, `through node ${n.id}`).toEqual(expected);
      const status = await cluster.status(n.id);
      expect(status?.appliedIndex).toBeGreaterThanOrEqual(commit);
      // The restart recovered from the WAL (a recovery report is logged).
      const opened = n.process!.logLines().find((l) => l["msg"] === "storage opened");
      expect(opened, `node ${n.id} logged "storage opened"`).toBeDefined();
    }
    // And it still takes writes.
    await cluster.client().put("disk/after-restart", "yes");
  });
});

describe("bad input", () => {
  let cluster: ProcessCluster;
  let leader: number;
  let follower: number;

  beforeAll(async () => {
    cluster = await newCluster("bad-input", shared);
    cluster.startAll();
    leader = await cluster.waitForLeader();
    follower = cluster.nodes.find((n) => n.id !== leader)!.id;
  });

  /** The cluster still serves: a write through each live node, read back through each. */
  async function stillServes(tag: string, ids = cluster.nodes.map((n) => n.id)): Promise<void> {
    for (const id of ids) {
      const node = cluster.node(id);
      expect((await http(node.apiUrl, "GET", "/healthz")).status).toBe(200);
      const put = await http(node.apiUrl, "PUT", `/v1/kv/alive-${tag}-${id}`, {
        body: JSON.stringify({ value: "ok" }),
      });
      expect(put.status, JSON.stringify(put.body)).toBe(200);
      for (const reader of ids) {
        const get = await http(cluster.node(reader).apiUrl, "GET", `/v1/kv/alive-${tag}-${id}`);
        expect(get.body).toMatchObject({ entry: { value: "ok" } });
      }
    }
  }

  it("answers malformed requests with {code, message} and the right status, and keeps serving", async () => {
    const bigValue = "x".repeat(2 * 1024 * 1024 + 10);
    const cases: {
      what: string;
      method: string;
      path: string;
      body?: string;
      headers?: Record<string, string>;
      announceBodyOnly?: boolean;
      status: number;
      code: string;
      message?: RegExp;
    }[] = [
      {
        what: "malformed JSON",
        method: "PUT",
        path: "/v1/kv/k",
        body: '{"value": "unterminated',
        status: 400,
        code: "INVALID_ARGUMENT",
      },
      {
        what: "a number as the value",
        method: "PUT",
        path: "/v1/kv/k",
        body: JSON.stringify({ value: 42 }),
        status: 400,
        code: "INVALID_ARGUMENT",
      },
      {
        what: "an unknown field",
        method: "PUT",
        path: "/v1/kv/k",
        body: JSON.stringify({ value: "v", extra: true }),
        status: 400,
        code: "INVALID_ARGUMENT",
      },
      {
        what: "a string as a member id",
        method: "POST",
        path: "/v1/cluster/members",
        body: JSON.stringify({ id: "four", raftAddress: "127.0.0.1:1", apiAddress: "http://x" }),
        status: 400,
        code: "INVALID_ARGUMENT",
      },
      {
        what: "a non-numeric member id in the path",
        method: "POST",
        path: "/v1/cluster/members/abc/promote",
        status: 400,
        code: "INVALID_ARGUMENT",
      },
      {
        what: "an unknown consistency",
        method: "GET",
        path: "/v1/kv/k?consistency=eventual",
        status: 400,
        code: "INVALID_ARGUMENT",
      },
      {
        what: "a body over the API body limit (2 MiB)",
        method: "PUT",
        path: "/v1/kv/big",
        body: JSON.stringify({ value: bigValue }),
        announceBodyOnly: true,
        status: 413,
        code: "TOO_LARGE",
      },
      {
        what: "a value over the kv value limit (1 MiB) in a body under the body limit",
        method: "PUT",
        path: "/v1/kv/big",
        body: JSON.stringify({ value: "y".repeat(1024 * 1024 + 1) }),
        status: 413,
        code: "TOO_LARGE",
      },
      {
        what: "promoting a non-member",
        method: "POST",
        path: "/v1/cluster/members/99/promote",
        status: 404,
        code: "NOT_FOUND",
      },
      {
        what: "removing a non-member",
        method: "DELETE",
        path: "/v1/cluster/members/99",
        status: 404,
        code: "NOT_FOUND",
      },
    ];
    // Through the leader and through a follower (which forwards the membership changes).
    for (const id of [leader, follower]) {
      const url = cluster.node(id).apiUrl;
      for (const c of cases) {
        const answer = await http(url, c.method, c.path, {
          ...(c.body === undefined ? {} : { body: c.body }),
          ...(c.headers === undefined ? {} : { headers: c.headers }),
          ...(c.announceBodyOnly === true ? { announceBodyOnly: true } : {}),
        });
        const where = `${c.what} through node ${id}: ${JSON.stringify(answer.body).slice(0, 300)}`;
        expect(answer.status, where).toBe(c.status);
        expect(answer.body, where).toEqual({ code: c.code, message: expect.any(String) });
        expect((answer.body as { message: string }).message.length, where).toBeGreaterThan(0);
      }
    }
    // Nothing was written by the refused requests.
    expect((await http(cluster.node(leader).apiUrl, "GET", "/v1/kv/big")).status).toBe(404);
    expect((await http(cluster.node(leader).apiUrl, "GET", "/v1/kv/k")).status).toBe(404);
    expect(
      (await http(cluster.node(leader).apiUrl, "GET", "/v1/cluster/members")).body,
    ).toMatchObject({ members: [{ id: 1 }, { id: 2 }, { id: 3 }] });
    await stillServes("http");
  });

  /**
   * Sends `bytes` to a peer port over TLS with a certificate of the cluster's CA (past the
   * handshake, as a compromised member could) and returns the frames received until the server
   * closes.
   */
  /** The TLS options of a peer presenting the cluster CA's certificate for node `id`. */
  async function nodeIdentity(id: number): Promise<{ ca: string; cert: string; key: string }> {
    const dir = join(cluster.root, `probe-${id}`);
    await cluster.pki.provision(dir, id);
    return {
      ca: readFileSync(join(dir, "tls", "ca.pem"), "utf8"),
      cert: readFileSync(join(dir, "tls", `node-${id}.pem`), "utf8"),
      key: readFileSync(join(dir, "tls", `node-${id}-key.pem`), "utf8"),
    };
  }

  /**
   * Sends `bytes` on a raw TLS connection to a peer port, as node `asNode` (its certificate from
   * the cluster CA: the hello's sender must match it), and returns the frames answered.
   */
  async function peerExchange(
    address: string,
    bytes: Uint8Array,
    asNode: number,
  ): Promise<Uint8Array[]> {
    const [host, port] = address.split(":") as [string, string];
    const identity = await nodeIdentity(asNode);
    const socket = tlsConnect({ host, port: Number(port), ...identity }, () => socket.write(bytes));
    const received: Buffer[] = [];
    const closed = new Promise<void>((resolve) => {
      socket.on("data", (d: Buffer) => received.push(d));
      // A refused connection may end in a reset rather than a clean close; either is a close.
      socket.on("error", () => undefined);
      socket.once("close", () => resolve());
    });
    try {
      await withDeadline(closed, 5000, `${address} to close the refused connection`);
    } finally {
      socket.destroy();
    }
    const all = Buffer.concat(received);
    const frames: Uint8Array[] = [];
    for (let at = 0; at + 4 <= all.length;) {
      const length = all.readUInt32BE(at);
      frames.push(all.subarray(at + 4, at + 4 + length));
      at += 4 + length;
    }
    return frames;
  }

  function hello(fields: { clusterId: string; fromId: number; toId: number }): Uint8Array {
    return encodeFrame(
      frame({
        case: "hello",
        value: create(HelloSchema, {
          clusterId: fields.clusterId,
          fromId: BigInt(fields.fromId),
          toId: BigInt(fields.toId),
          protocolVersion: PROTOCOL_VERSION,
        }),
      }),
    );
  }

  /**
   * Waits for a "refused peer connection" log line on node `id` whose reason matches; the
   * deadline covers a process spawn on a loaded 2-core machine when the dialler is a new node.
   */
  async function refusalLogged(id: number, reason: RegExp, deadlineMs = 5000): Promise<void> {
    await until(
      () =>
        cluster
          .node(id)
          .process!.logLines()
          .some((l) => l["msg"] === "refused peer connection" && reason.test(String(l["reason"])))
          ? true
          : undefined,
      `node ${id} to log a refused peer connection matching ${reason}`,
      deadlineMs,
    );
  }

  it("refuses a raw peer connection claiming an unknown id (or another cluster) with a log line", async () => {
    const target = cluster.node(follower);
    const cases = [
      {
        fields: { clusterId: cluster.clusterId, fromId: 42, toId: follower },
        reason: /node 42 is not a known peer/,
      },
      {
        fields: { clusterId: "another-cluster", fromId: leader, toId: follower },
        reason: /cluster id "another-cluster"/,
      },
      {
        fields: { clusterId: cluster.clusterId, fromId: leader, toId: 7 },
        reason: /hello is for node 7/,
      },
    ];
    for (const c of cases) {
      const frames = await peerExchange(target.peerAddress, hello(c.fields), c.fields.fromId);
      expect(frames.length, `one refusal frame for ${JSON.stringify(c.fields)}`).toBe(1);
      const answer = decodeFrame(frames[0]!);
      expect(answer.kind.case).toBe("refusal");
      expect(answer.kind.case === "refusal" ? answer.kind.value.reason : "").toMatch(c.reason);
      // Refusals are logged at most once per remote address and kind every 10 s: the first only.
      if (c === cases[0]) await refusalLogged(follower, c.reason);
    }
    // Bytes that are not a frame at all: a length over the frame limit.
    await peerExchange(
      target.peerAddress,
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
      leader,
    );
    expect(cluster.isUp(follower)).toBe(true);
    await stillServes("raw-peer");
  });

  it("a fourth node that is not a member is refused by every node, and the cluster keeps serving", async () => {
    const extra = await ProcessCluster.create({ size: 1, name: "blixard-faults-intruder" });
    perTest.push(extra);
    const intruder = extra.node(1);
    // A certificate from the cluster's own CA: the TLS handshake passes, the member check must not.
    await cluster.pki.provision(intruder.dataDir, 4);
    // Node 4, "bootstrapped" with the cluster's members plus itself, dials their peer ports.
    const members = `${cluster.initialMembers},4=${intruder.peerAddress}@${intruder.apiAddress}`;
    const p = extra.spawn("intruder node 4", [
      "node",
      "start",
      "--id",
      "4",
      "--data-dir",
      intruder.dataDir,
      "--peer-listen",
      intruder.peerAddress,
      "--api-listen",
      intruder.apiAddress,
      "--initial-members",
      members,
      "--cluster-id",
      cluster.clusterId,
    ]);
    for (const n of cluster.nodes) await refusalLogged(n.id, /node 4 is not a known peer/, 30_000);
    expect(p.exit).toBeUndefined();
    // The members never let it in: they agree on a leader among themselves and list 3 members.
    await cluster.waitForLeader();
    const members3 = await http(cluster.node(leader).apiUrl, "GET", "/v1/cluster/members");
    expect((members3.body as { members: { id: number }[] }).members.map((m) => m.id)).toEqual([
      1, 2, 3,
    ]);
    await stillServes("intruder");
  });

  it("a node started on another cluster's data directory exits with a clear error and leaves it intact", async () => {
    // The running leader's directory is locked by its process.
    const running = await cluster.run("start on a live directory", [
      "node",
      "start",
      "--data-dir",
      cluster.node(leader).dataDir,
    ]);
    expect(running.code, running.output).toBe(15);
    expect(running.output).toMatch(
      new RegExp(`error: .*in use by process ${cluster.pid(leader)}.*\\[UNAVAILABLE\\]`),
    );

    // A stopped follower's directory, reused by a node of "another cluster".
    expect(await cluster.stop(follower)).toEqual({ code: 0, signal: null });
    const before = cluster.digest(follower);
    const other = await ProcessCluster.create({ size: 3, name: "blixard-faults-other" });
    perTest.push(other);
    const dir = cluster.node(follower).dataDir;
    const foreign = [
      {
        what: "another --cluster-id",
        args: ["--cluster-id", "other-cluster"],
        message: /was created with --cluster-id faults-test/,
      },
      {
        what: "other --initial-members",
        args: ["--initial-members", other.initialMembers],
        message: /was created with the same --initial-members/,
      },
      {
        what: "another cluster's full flags",
        args: [
          "--id",
          String(follower),
          "--peer-listen",
          other.node(follower).peerAddress,
          "--api-listen",
          other.node(follower).apiAddress,
          "--initial-members",
          other.initialMembers,
          "--cluster-id",
          "other-cluster",
        ],
        message:
          /was created with --cluster-id faults-test, --peer-listen .*--api-listen .*the same --initial-members/,
      },
    ];
    for (const f of foreign) {
      const result = await cluster.run(`start with ${f.what}`, [
        "node",
        "start",
        "--data-dir",
        dir,
        ...f.args,
      ]);
      expect(result.code, `${f.what}: ${result.output}`).toBe(64);
      expect(result.output, f.what).toMatch(f.message);
      expect(result.output, f.what).not.toMatch(/\n\s+at /); // one line, no stack
    }
    expect(cluster.digest(follower)).toBe(before);
    expect(cluster.isUp(leader)).toBe(true);

    // The directory is still good: the follower restarts from it and catches up.
    cluster.start(follower, "restart");
    await cluster.waitForLeader();
    await stillServes("foreign-dir");
  });
});
