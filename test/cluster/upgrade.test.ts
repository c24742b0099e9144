/**
 * A rolling upgrade with real processes over TLS: three nodes start as the previous release
 * (peer protocol 1, through the test switch BLIXARD_TEST_PROTOCOL_VERSION=1), writers keep
 * writing through every member, and each node in turn is stopped gracefully and restarted as
 * this release. No client sees an error; every acknowledged write is on every node; no forwarded
 * proposal entered the log while a node of protocol 1 was a member; and once the last node runs
 * this release's protocol (2 or later) the cluster's gate opens and followers forward writes over
 * the peer transport.
 * Batches of agent reports, which the previous release cannot apply, are refused until then.
 *
 * How clients ride over a restart: each write goes out through a fresh SDK client whose first
 * endpoint is the member it writes through and whose other endpoints are the other members
 * (fresh, so that it does not stay on the leader it learned from an HTTP forward). The SDK moves
 * to the next endpoint when a node refuses the connection, and retries a sessioned write that may
 * have been lost with the same session and sequence, so it is applied once.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { StatusResponse } from "../../src/api/schema/index.js";
import { PROTOCOL_VERSION } from "../../src/transport/codec.js";
import { ensureBuilt } from "../cli/helpers.js";
import { ProcessCluster, until } from "./process-cluster.js";

const TEST_TIMEOUT_MS = 120_000;
const PREVIOUS_RELEASE = { BLIXARD_TEST_PROTOCOL_VERSION: "1" };

describe("rolling upgrade", () => {
  let cluster: ProcessCluster | undefined;

  beforeAll(async () => {
    await ensureBuilt();
  }, TEST_TIMEOUT_MS);

  afterEach(async () => {
    await cluster?.destroy();
    cluster = undefined;
  });

  it(
    "upgrades a protocol-1 cluster node by node under writes through every member: no client error, nothing lost, forwarding only after the last node",
    async () => {
      const c = await ProcessCluster.create({ size: 3, name: "blixard-upgrade", clusterId: "up" });
      cluster = c;
      const ids = c.nodes.map((n) => n.id);
      for (const id of ids) c.start(id, "bootstrap", PREVIOUS_RELEASE);
      await c.waitForLeader();
      const statuses = async (): Promise<StatusResponse[]> => {
        const all = await Promise.all(ids.map((id) => c.status(id, 3000)));
        return all.filter((s): s is StatusResponse => s !== undefined);
      };
      for (const s of await statuses()) {
        expect(s).toMatchObject({ protocolVersion: 1, clusterProtocolVersion: 1 });
      }
      // The previous release says no version in its handshakes; each node knows its own.
      const before = await c.client([1]).members();
      expect(before.members.find((m) => m.id === 1)).toMatchObject({ protocolVersion: 1 });
      expect(before.members.find((m) => m.id === 2)?.version).toBeUndefined();

      // One writer per member, each writing through its member first.
      const acknowledged: string[] = [];
      const errors: unknown[] = [];
      let writing = true;
      const writer = async (through: number): Promise<void> => {
        const others = ids.filter((id) => id !== through);
        for (let i = 0; writing; i++) {
          const key = `up/${through}/${i}`;
          const client = c.client([through, ...others], { timeoutMs: 30_000, retries: 40 });
          try {
            await client.put(key, `v${i}`);
            acknowledged.push(key);
          } catch (error) {
            errors.push({ key, error: String(error) });
          }
        }
      };
      const writers = ids.map(writer);
      const moreWrites = async (count: number, what: string): Promise<void> => {
        const target = acknowledged.length + count;
        await until(() => (acknowledged.length >= target ? true : undefined), what, 30_000);
      };
      await moreWrites(30, "writes on protocol 1");

      // A batch of agent reports, which a node of the previous release cannot apply: refused
      // before anything is proposed while the gate is closed, taken once it is open.
      const reportBatch = (through: number) => {
        const batch = {
          type: "agentReports",
          nodeId: through,
          reports: [{ type: "taskStarted", id: "no-such-task", nodeId: through, attempt: 1 }],
        };
        return c.client([through]).orchestrator.report(batch);
      };
      await expect(reportBatch(ids[0]!)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });

      let lastIndexBeforeLastStop = 0;
      for (const id of ids) {
        const before = await c.status(id, 3000);
        // A node of protocol 1 never applied a forwarded proposal (it could not have read it).
        expect(before).toMatchObject({ protocolVersion: 1, forwardedEntriesApplied: 0 });
        if (id === ids.at(-1)) {
          lastIndexBeforeLastStop = Math.max(...(await statuses()).map((s) => s.lastIndex));
        }
        const exit = await c.stop(id);
        expect(exit, c.node(id).process!.output.slice(-2000)).toEqual({ code: 0, signal: null });
        c.start(id, "restart");
        await until(
          async () =>
            (await c.status(id, 3000))?.protocolVersion === PROTOCOL_VERSION ? true : undefined,
          `node ${id} back on protocol ${PROTOCOL_VERSION}`,
          30_000,
        );
        await c.waitForLeader(ids);
        if (id !== ids.at(-1)) {
          // Still a member on protocol 1: the gate stays closed, on the upgraded node too.
          for (const s of await statuses()) expect(s.clusterProtocolVersion).toBe(1);
          await expect(reportBatch(id)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
        }
        await moreWrites(20, `writes after node ${id} upgraded`);
      }

      // Every member speaks this release's protocol: the leader appends the protocol entry, and
      // forwarding (protocol 2 and later) opens.
      await until(
        async () => {
          const all = await statuses();
          return all.length === 3 && all.every((s) => s.clusterProtocolVersion === PROTOCOL_VERSION)
            ? true
            : undefined;
        },
        "the gate open on every node",
        30_000,
      );
      expect(await reportBatch(ids[0]!)).toEqual({
        accepted: true,
        items: [{ ok: false, id: "no-such-task", code: "NOT_FOUND", message: expect.any(String) }],
      });
      await until(
        async () => {
          const forwarded = (await statuses()).reduce((sum, s) => sum + s.proposalsForwarded, 0);
          return forwarded >= 10 ? true : undefined;
        },
        "followers forwarding writes over the peer transport",
        30_000,
      );
      writing = false;
      await Promise.all(writers);
      expect(errors).toEqual([]);

      // Every node has applied everything, and holds every acknowledged write.
      const final = await statuses();
      const commit = Math.max(...final.map((s) => s.commitIndex));
      await until(
        async () => ((await statuses()).every((s) => s.appliedIndex >= commit) ? true : undefined),
        "every node applied the final commit index",
      );
      for (const id of ids) {
        const client = c.client([id]);
        const seen = new Set<string>();
        let start: string | undefined = "up/";
        while (start !== undefined) {
          const page = await client.list({
            prefix: "up/",
            start,
            limit: 1000,
            consistency: "stale",
          });
          for (const e of page.entries) seen.add(e.key);
          start = page.more ? page.nextStart : undefined;
        }
        const missing = acknowledged.filter((key) => !seen.has(key));
        expect(missing, `node ${id}`).toEqual([]);
      }

      // Forwarded proposals are in the log, all of them after the last node of protocol 1 left.
      const after = await statuses();
      expect(after.some((s) => s.forwardedEntriesApplied > 0)).toBe(true);
      for (const s of after) {
        if (s.firstForwardedIndex === 0) continue;
        expect(s.firstForwardedIndex, `node ${s.id}`).toBeGreaterThan(lastIndexBeforeLastStop);
      }
      expect(after.reduce((sum, s) => sum + s.forwardedProposalsRefused, 0)).toBe(0);

      // Every member's release, as the leader heard it.
      const leader = await c.waitForLeader(ids);
      const { members } = await c.client([leader]).members();
      for (const m of members) {
        expect(m, `member ${m.id}`).toMatchObject({ protocolVersion: PROTOCOL_VERSION });
        expect(m.version, `member ${m.id}`).toMatch(/^\d+\.\d+\.\d+/);
      }

      // The gate never closes: a member cannot come back as the previous release.
      const last = ids.at(-1)!;
      await c.stop(last);
      const downgraded = c.start(last, "restart", PREVIOUS_RELEASE);
      const exit = await downgraded.waitExit(20_000);
      expect(exit.code).not.toBe(0);
      expect(downgraded.output).toContain(
        `start it with a release that speaks ${PROTOCOL_VERSION}`,
      );
    },
    TEST_TIMEOUT_MS,
  );
});
