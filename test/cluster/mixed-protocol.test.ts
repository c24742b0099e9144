/**
 * A cluster mixing this release (peer protocol 3: control messages on both connections of a
 * pair, `src/transport/duplex-path.ts`) with the release of protocol 2 (the test switch
 * BLIXARD_TEST_PROTOCOL_VERSION=2), real processes over TLS: it elects and serves writes through
 * every member, nothing is sent back on a connection of the protocol-2 node (which would close
 * it), the cluster's gate stays at 2, and once that node restarts as this release the gate moves
 * to 3.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { PROTOCOL_VERSION } from "../../src/transport/codec.js";
import { DUPLEX_PROTOCOL_VERSION } from "../../src/transport/protocol-version.js";
import { ensureBuilt } from "../cli/helpers.js";
import { http, ProcessCluster, until } from "./process-cluster.js";

const TEST_TIMEOUT_MS = 120_000;
const RELEASE_OF_PROTOCOL_2 = {
  BLIXARD_TEST_PROTOCOL_VERSION: String(DUPLEX_PROTOCOL_VERSION - 1),
};

/** `blixard_peer_messages_total` of node `id` for `peer` and `direction` (0 when absent). */
async function peerMessages(
  c: ProcessCluster,
  id: number,
  peer: number,
  direction: string,
): Promise<number> {
  const text = String((await http(c.node(id).apiUrl, "GET", "/metrics")).body);
  for (const line of text.split("\n")) {
    if (!line.startsWith("blixard_peer_messages_total{")) continue;
    if (line.includes(`peer="${peer}"`) && line.includes(`direction="${direction}"`)) {
      return Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return 0;
}

describe("mixed peer protocols", () => {
  let cluster: ProcessCluster | undefined;

  beforeAll(async () => {
    await ensureBuilt();
  }, TEST_TIMEOUT_MS);

  afterEach(async () => {
    await cluster?.destroy();
    cluster = undefined;
  });

  it(
    "a node of protocol 2 among nodes of protocol 3: elections, writes through every member, nothing sent back to it; the gate moves to 3 once it is upgraded",
    async () => {
      expect(PROTOCOL_VERSION).toBe(DUPLEX_PROTOCOL_VERSION);
      const c = await ProcessCluster.create({ size: 3, name: "blixard-mixed", clusterId: "mix" });
      cluster = c;
      c.start(1, "bootstrap");
      c.start(2, "bootstrap");
      c.start(3, "bootstrap", RELEASE_OF_PROTOCOL_2);
      const leader = await c.waitForLeader();
      for (const id of [1, 2, 3]) {
        await c.client([id]).put(`mix/${id}`, `through ${id}`);
      }
      for (const id of [1, 2, 3]) {
        for (const key of [1, 2, 3]) {
          const read = await c.client([id]).get(`mix/${key}`);
          expect(read?.entry.valueText).toBe(`through ${key}`);
        }
      }
      await until(
        async () => {
          const all = await Promise.all([1, 2, 3].map((id) => c.status(id, 3000)));
          return all.every((s) => s?.clusterProtocolVersion === 2) ? true : undefined;
        },
        "the gate at 2, the newest every member speaks",
        30_000,
      );
      // Votes always go both ways between nodes of protocol 3 (heartbeats only while answers
      // are late): a leadership transfer to one of them makes it campaign. Which way the copies
      // go depends on which connections exist (two followers of node 3 may never have dialled
      // each other before). Toward the node of protocol 2 nothing is copied, and it copies nothing.
      await c.client([leader]).transferLeader(leader === 1 ? 2 : 1);
      const copied = async (from: number, to: number): Promise<boolean> =>
        (await peerMessages(c, from, to, "sent_back")) > 0 &&
        (await peerMessages(c, to, from, "received_back")) > 0;
      await until(
        async () => ((await copied(1, 2)) || (await copied(2, 1)) ? true : undefined),
        "copies of the campaign's messages between the nodes of protocol 3",
        30_000,
      );
      // And as datagrams, tagged with the key of their TLS connection (datagram-channel.ts).
      const byDatagram = async (from: number, to: number): Promise<boolean> =>
        (await peerMessages(c, from, to, "sent_datagram")) > 0 &&
        (await peerMessages(c, to, from, "received_datagram")) > 0;
      await until(
        async () => ((await byDatagram(1, 2)) || (await byDatagram(2, 1)) ? true : undefined),
        "datagram copies of the campaign's messages between the nodes of protocol 3",
        30_000,
      );
      for (const id of [1, 2]) {
        expect(await peerMessages(c, id, 3, "sent_back")).toBe(0);
        expect(await peerMessages(c, id, 3, "received_back")).toBe(0);
        // The release of protocol 2 reads no datagrams (nothing listens), and sends none.
        expect(await peerMessages(c, id, 3, "received_datagram")).toBe(0);
      }
      for (const peer of [1, 2]) {
        expect(await peerMessages(c, 3, peer, "sent_back")).toBe(0);
        expect(await peerMessages(c, 3, peer, "sent_datagram")).toBe(0);
      }
      for (const id of [1, 2, 3]) {
        expect(c.node(id).process!.output).not.toContain("refused peer connection");
        expect(c.node(id).process!.output).not.toContain("bad frame from peer");
      }

      // Node 3 upgraded: every member speaks 3, and the gate follows.
      expect(await c.stop(3)).toEqual({ code: 0, signal: null });
      c.start(3, "restart");
      await until(
        async () => {
          const all = await Promise.all([1, 2, 3].map((id) => c.status(id, 3000)));
          return all.every((s) => s?.clusterProtocolVersion === DUPLEX_PROTOCOL_VERSION)
            ? true
            : undefined;
        },
        "the gate at 3",
        30_000,
      );
      await c.client([3]).put("mix/after", "upgraded");
      expect((await c.client([1]).get("mix/after"))?.entry.valueText).toBe("upgraded");
    },
    TEST_TIMEOUT_MS,
  );
});
