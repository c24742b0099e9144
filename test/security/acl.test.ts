/**
 * Authorization on real processes: a 3-node cluster started with the API enforcing ACLs
 * (`--api-auth enforce`, the default once nodes carry certificates). Unauthenticated and
 * under-privileged calls are refused with the right status, on the leader and through a
 * follower (which forwards the bearer token unchanged), the node stays up and the data intact,
 * and each mutating request leaves an audit line without secrets.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "../cli/helpers.js";
import { http, ProcessCluster, until } from "../cluster/process-cluster.js";

let cluster: ProcessCluster;
let management: string;

beforeAll(async () => {
  await ensureBuilt();
  cluster = await ProcessCluster.create({
    size: 3,
    name: "blixard-acl",
    clusterId: "acl-test",
    extraArgs: ["--api-auth", "enforce"],
  });
  cluster.startAll();
  management = await cluster.bootstrapAcl(2);
  await cluster.waitForLeader();
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
});

const auth = (secret: string) => ({ authorization: `Bearer ${secret}` });

async function follower(): Promise<string> {
  const leader = await cluster.waitForLeader();
  return cluster.nodes.find((n) => n.id !== leader)!.apiUrl;
}

describe("ACLs on a real cluster", () => {
  it("refuses an unauthenticated shell task, a second bootstrap and an unknown token", async () => {
    for (const node of cluster.nodes) {
      const answer = await http(node.apiUrl, "POST", "/v1/tasks", {
        body: JSON.stringify({ spec: { command: "id; head -c 20 /etc/shadow", shell: true } }),
        withoutCertificate: true,
      });
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ code: "UNAUTHENTICATED" });
    }
    expect((await http(cluster.nodes[0]!.apiUrl, "POST", "/v1/acl/bootstrap")).status).toBe(409);
    const forged = await http(cluster.nodes[0]!.apiUrl, "PUT", "/v1/kv/x", {
      body: JSON.stringify({ value: "v" }),
      headers: auth("bxt_forged"),
      withoutCertificate: true,
    });
    expect(forged.status).toBe(401);
  });

  it("a token that may only read kv reads through a follower but cannot write", async () => {
    const via = await follower();
    const policy = await http(via, "PUT", "/v1/acl/policies/kv-reader", {
      body: JSON.stringify({ rules: [{ resource: "kv", access: "read", prefix: "app/" }] }),
      headers: auth(management),
    });
    expect(policy.status).toBe(200);
    const created = await http(via, "POST", "/v1/acl/tokens", {
      body: JSON.stringify({ name: "reader", policies: ["kv-reader"] }),
      headers: auth(management),
    });
    expect(created.status).toBe(200);
    const reader = (created.body as { secret: string }).secret;

    const put = await http(via, "PUT", "/v1/kv/app%2Fconfig", {
      body: JSON.stringify({ value: "v1" }),
      headers: auth(management),
    });
    expect(put.status).toBe(200);
    // The token reached the follower right after its creation was acknowledged by the leader:
    // wait for this follower to apply it (no Raft round per request, so it reads its replica).
    const read = await until(
      async () => {
        const a = await http(via, "GET", "/v1/kv/app%2Fconfig", { headers: auth(reader) });
        return a.status === 401 ? undefined : a;
      },
      "the follower to know the new token",
      10_000,
    );
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ entry: { value: "v1" } });
    const write = await http(via, "PUT", "/v1/kv/app%2Fconfig", {
      body: JSON.stringify({ value: "evil" }),
      headers: auth(reader),
    });
    expect(write.status).toBe(403);
    expect(write.body).toMatchObject({ code: "PERMISSION_DENIED" });
    expect((write.body as { message: string }).message).toContain("kv:write:app/config");

    // `cluster remove` without operator rights: refused with exit code 18 (PERMISSION_DENIED).
    const remove = await cluster.run("cluster remove", [
      "cluster",
      "remove",
      "3",
      "--endpoints",
      via,
      "--token",
      reader,
    ]);
    expect(remove.code).toBe(18);
    expect(remove.output).toContain("cluster:operator");

    // Every node is up, the membership and the data are intact.
    const leader = await cluster.waitForLeader();
    expect(leader).toBeGreaterThan(0);
    const status = await cluster.status(leader);
    expect(status?.config.voters).toEqual([1, 2, 3]);
    const after = await http(cluster.nodes[0]!.apiUrl, "GET", "/v1/kv/app%2Fconfig", {
      headers: auth(management),
    });
    expect(after.body).toMatchObject({ entry: { value: "v1" } });
  });

  it("writes audit lines for mutating requests, without secrets", async () => {
    // Each node records what it served: refusals where they happened, forwarded writes on both.
    const lines = await until(
      () => {
        const text = cluster.nodes
          .map((n) => readFileSync(join(n.dataDir, "audit.log"), "utf8"))
          .join("");
        return text.includes("/v1/acl/tokens") ? text : undefined;
      },
      "audit lines",
      10_000,
    );
    const records = lines
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records.some((r) => r["route"] === "/v1/tasks" && r["status"] === 401)).toBe(true);
    expect(
      records.some(
        (r) =>
          r["route"] === "/v1/kv/:key" &&
          r["status"] === 403 &&
          r["permission"] === "kv:write:app/config",
      ),
    ).toBe(true);
    expect(lines).not.toContain(management);
    expect(lines).not.toContain("evil");
  });
});
