import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startCluster, until, type TestCluster } from "./harness.js";

describe("cluster, health, metrics and OpenAPI routes", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it("reports status, members and readiness", async () => {
    const leader = await cluster.leader();
    const status = await call(leader.url, "GET", "/v1/cluster/status");
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({
      id: leader.id,
      role: "leader",
      leader: leader.id,
      joint: false,
      config: { voters: [1, 2, 3] },
    });
    expect(status.body.progress).toHaveLength(3);
    const [follower] = await cluster.followers();
    const members = await call(follower!.url, "GET", "/v1/cluster/members");
    expect(members.body.leader).toBe(leader.id);
    expect(members.body.members).toHaveLength(3);
    expect(members.body.members[0]).toMatchObject({ id: 1, suffrage: "voter" });
    expect(members.body.members[0].apiAddress).toMatch(/^http:\/\/127\.0\.0\.1:/);
    for (const node of cluster.nodes) {
      expect((await call(node.url, "GET", "/readyz")).body).toEqual({
        ready: true,
        leader: leader.id,
      });
      expect((await call(node.url, "GET", "/healthz")).body).toEqual({ status: "ok", id: node.id });
    }
  });

  it("adds a learner, promotes it and removes it, through a follower", async () => {
    const [follower] = await cluster.followers();
    const added = await call(follower!.url, "POST", "/v1/cluster/members", {
      body: { id: 4, raftAddress: "loopback:4", apiAddress: "http://127.0.0.1:9/" },
    });
    expect(added.status).toBe(200);
    expect(added.body.config.learners).toEqual([4]);
    const again = await call(follower!.url, "POST", "/v1/cluster/members", {
      body: { id: 4, raftAddress: "loopback:4", apiAddress: "http://127.0.0.1:9/" },
    });
    expect(again.body.code).toBe("CONFLICT");
    const leader = await cluster.leader();
    const members = await call(leader.url, "GET", "/v1/cluster/members");
    expect(members.body.members).toContainEqual({
      id: 4,
      suffrage: "learner",
      outgoing: false,
      leader: false,
      raftAddress: "loopback:4",
      apiAddress: "http://127.0.0.1:9/",
    });
    const promoted = await call(follower!.url, "POST", "/v1/cluster/members/4/promote");
    expect(promoted.status).toBe(200);
    expect(promoted.body.config.voters).toEqual([1, 2, 3, 4]);
    const removed = await call(follower!.url, "DELETE", "/v1/cluster/members/4");
    expect(removed.status).toBe(200);
    expect(removed.body.config.voters).toEqual([1, 2, 3]);
  });

  it("transfers leadership to a follower", async () => {
    const [target] = await cluster.followers();
    const transferred = await call(target!.url, "POST", "/v1/cluster/transfer-leader", {
      body: { id: target!.id },
    });
    expect(transferred.status).toBe(200);
    expect(transferred.body).toEqual({ leader: target!.id });
    const leader = await cluster.leader();
    expect(leader.id).toBe(target!.id);
  });

  it("serves an OpenAPI 3.1 document with a path for every route", async () => {
    const node = cluster.nodes[0]!;
    const doc = await call(node.url, "GET", "/openapi.json");
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe("3.1.0");
    for (const route of node.server.routes) {
      const path = route.url.replace(/:([A-Za-z]+)/g, "{$1}");
      const operation = doc.body.paths[path]?.[route.method.toLowerCase()];
      expect(operation, `${route.method} ${path}`).toBeDefined();
      expect(operation.responses["200"]).toBeDefined();
      if (route.body !== undefined) expect(operation.requestBody).toBeDefined();
    }
    const put = doc.body.paths["/v1/kv/{key}"].put;
    expect(put.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(["key", "blixard-client-id", "blixard-sequence"]),
    );
    expect(put.responses["413"]).toBeDefined();
    expect(doc.body.components.schemas.ErrorBody.required).toEqual(["code", "message"]);
  });

  it("builds the OpenAPI document on its first request, once for concurrent first requests", async () => {
    // Node 1 has not been asked for it yet (the test above asks node 0).
    const node = cluster.nodes[1]!;
    const first = await Promise.all([
      call(node.url, "GET", "/openapi.json"),
      call(node.url, "GET", "/openapi.json"),
    ]);
    const reference = await call(cluster.nodes[0]!.url, "GET", "/openapi.json");
    for (const doc of first) {
      expect(doc.status).toBe(200);
      expect(doc.body).toEqual(reference.body);
    }
    expect(Object.keys(first[0]!.body.paths).length).toBeGreaterThan(10);
  });

  it("exposes Prometheus metrics", async () => {
    const leader = await cluster.leader();
    await call(leader.url, "PUT", "/v1/kv/metered", { body: { value: "1" } });
    await call(leader.url, "GET", "/v1/kv/metered");
    const metrics = await until(async () => {
      const r = await call(leader.url, "GET", "/metrics");
      return String(r.body).includes("blixard_raft_leader_changes_total") ? r : undefined;
    }, "metrics");
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain/);
    for (const name of [
      "blixard_raft_term",
      "blixard_raft_role",
      "blixard_raft_leader_id",
      "blixard_raft_leader_changes_total",
      "blixard_raft_commit_index",
      "blixard_raft_applied_index",
      "blixard_proposals_total",
      "blixard_proposal_apply_latency_seconds_bucket",
      "blixard_read_latency_seconds_bucket",
      "blixard_http_requests_total",
      "blixard_event_loop_delay_max_seconds",
    ]) {
      expect(metrics.body).toContain(name);
    }
    expect(metrics.body).toMatch(
      /blixard_proposals_total\{namespace="kv",outcome="applied",node_id="\d"\} [1-9]/,
    );
    expect(metrics.body).toMatch(
      /blixard_read_latency_seconds_count\{node_id="\d",namespace="kv",consistency="linearizable",outcome="ok"\} [1-9]/,
    );
    expect(metrics.body).toContain(`blixard_raft_role{role="leader",node_id="${leader.id}"} 1`);
  });
});
