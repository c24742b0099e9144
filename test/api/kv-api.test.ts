import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startCluster, until, type TestCluster } from "./harness.js";

describe("kv API on a 3-node cluster", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it("a follower hands a put to the leader over the peer transport and answers it itself; every node reads it linearizably", async () => {
    const leader = await cluster.leader();
    const [follower] = await cluster.followers();
    const metric = async (name: string): Promise<number> => {
      const text = (await call(follower!.url, "GET", "/metrics")).body as string;
      const line = text.split("\n").find((l) => l.startsWith(`${name}{`));
      return line === undefined ? 0 : Number(line.split(" ").at(-1));
    };
    const forwardedBefore = await metric("blixard_proposals_forwarded_total");
    const put = await call(follower!.url, "PUT", "/v1/kv/dir%2Fgreeting", {
      body: { value: "hello" },
    });
    expect(put.status).toBe(200);
    // No HTTP hop: the follower answered from its own apply, and names the leader for next time.
    expect(put.headers.get("blixard-leader-address")).toBe(leader.url.href);
    expect(await metric("blixard_proposals_forwarded_total")).toBe(forwardedBefore + 1);
    expect(await metric("blixard_http_forwarded_total")).toBe(0);
    expect(put.body.revision).toBeGreaterThan(0);
    for (const node of cluster.nodes) {
      const got = await call(node.url, "GET", "/v1/kv/dir%2Fgreeting?consistency=linearizable");
      expect(got.status).toBe(200);
      expect(got.body.entry).toMatchObject({
        key: "dir/greeting",
        value: "hello",
        valueBase64: Buffer.from("hello").toString("base64"),
        modRevision: put.body.revision,
        version: 1,
      });
    }
  });

  it("stores bytes given as base64 and answers lease and stale reads", async () => {
    const leader = await cluster.leader();
    const bytes = Buffer.from([0xff, 0x00, 0xfe]);
    const put = await call(leader.url, "PUT", "/v1/kv/binary", {
      body: { valueBase64: bytes.toString("base64") },
    });
    expect(put.status).toBe(200);
    const [follower] = await cluster.followers();
    const lease = await call(follower!.url, "GET", "/v1/kv/binary?consistency=lease");
    expect(lease.status).toBe(200);
    expect(lease.body.entry.value).toBeUndefined();
    expect(lease.body.entry.valueBase64).toBe(bytes.toString("base64"));
    const stale = await until(async () => {
      const r = await call(follower!.url, "GET", "/v1/kv/binary?consistency=stale");
      return r.status === 200 ? r : undefined;
    }, "the follower to apply the put");
    expect(stale.body.entry.valueBase64).toBe(bytes.toString("base64"));
  });

  it("compare-and-set succeeds when the key is as expected and reports the current entry otherwise", async () => {
    const [follower] = await cluster.followers();
    const created = await call(follower!.url, "POST", "/v1/kv/lock/cas", {
      body: { expected: { absent: true }, value: "owner-a" },
    });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ succeeded: true });
    const lost = await call(follower!.url, "POST", "/v1/kv/lock/cas", {
      body: { expected: { absent: true }, value: "owner-b" },
    });
    expect(lost.status).toBe(200);
    expect(lost.body).toMatchObject({ succeeded: false, current: { value: "owner-a" } });
    const byRevision = await call(follower!.url, "POST", "/v1/kv/lock/cas", {
      body: { expected: { modRevision: created.body.revision }, value: "owner-c" },
    });
    expect(byRevision.body).toMatchObject({ succeeded: true });
    const byValue = await call(follower!.url, "POST", "/v1/kv/lock/cas", {
      body: { expected: { value: "owner-a" }, value: "owner-d" },
    });
    expect(byValue.body).toMatchObject({ succeeded: false, current: { value: "owner-c" } });
  });

  it("deletes a key; a missing key is 404 NOT_FOUND and a second delete reports deleted: false", async () => {
    const leader = await cluster.leader();
    await call(leader.url, "PUT", "/v1/kv/doomed", { body: { value: "x" } });
    const del = await call(leader.url, "DELETE", "/v1/kv/doomed?returnPrevious=true");
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ deleted: true, previous: { value: "x" } });
    const again = await call(leader.url, "DELETE", "/v1/kv/doomed");
    expect(again.body).toMatchObject({ deleted: false });
    const missing = await call(leader.url, "GET", "/v1/kv/doomed");
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ code: "NOT_FOUND", message: 'key "doomed" does not exist' });
  });

  it("lists by prefix in key order with a limit and a continuation", async () => {
    const leader = await cluster.leader();
    for (const k of ["list/c", "list/a", "list/b", "other"]) {
      await call(leader.url, "PUT", `/v1/kv/${encodeURIComponent(k)}`, { body: { value: k } });
    }
    const [follower] = await cluster.followers();
    const page = await call(follower!.url, "GET", "/v1/kv?prefix=list%2F&limit=2");
    expect(page.status).toBe(200);
    expect(page.body.entries.map((e: { key: string }) => e.key)).toEqual(["list/a", "list/b"]);
    expect(page.body).toMatchObject({ more: true, nextStart: "list/c" });
    const rest = await call(
      follower!.url,
      "GET",
      `/v1/kv?prefix=list%2F&start=${encodeURIComponent(page.body.nextStart)}`,
    );
    expect(rest.body.entries.map((e: { key: string }) => e.key)).toEqual(["list/c"]);
    expect(rest.body.more).toBe(false);
  });

  it("applies a retried sessioned write once and returns the first result", async () => {
    const leader = await cluster.leader();
    const [follower] = await cluster.followers();
    const headers = { "blixard-client-id": "test-session-1", "blixard-sequence": "1" };
    const first = await call(follower!.url, "PUT", "/v1/kv/once", {
      body: { value: "v" },
      headers,
    });
    expect(first.status).toBe(200);
    const revisionAfterFirst = leader.kv.revision;
    const retry = await call(leader.url, "PUT", "/v1/kv/once", { body: { value: "v" }, headers });
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(first.body);
    expect(leader.kv.revision).toBe(revisionAfterFirst);
    const got = await call(leader.url, "GET", "/v1/kv/once");
    expect(got.body.entry.version).toBe(1);
    const next = await call(leader.url, "PUT", "/v1/kv/once", {
      body: { value: "w" },
      headers: { ...headers, "blixard-sequence": "2", "blixard-acked-below": "2" },
    });
    expect(next.body.revision).toBe(revisionAfterFirst + 1);
  });

  it("refuses bad input with {code, message} and the right status, and keeps serving", async () => {
    const [follower] = await cluster.followers();
    const leader = await cluster.leader();
    const cases: [string, string, Parameters<typeof call>[3], number, string][] = [
      ["PUT", "/v1/kv/k", { rawBody: "{not json" }, 400, "INVALID_ARGUMENT"],
      ["PUT", "/v1/kv/k", { body: { value: 42 } }, 400, "INVALID_ARGUMENT"],
      ["PUT", "/v1/kv/k", { body: { value: "a", valueBase64: "YQ==" } }, 400, "INVALID_ARGUMENT"],
      ["PUT", "/v1/kv/k", { body: { valueBase64: "not base64!" } }, 400, "INVALID_ARGUMENT"],
      ["PUT", "/v1/kv/k", { body: { value: "a", surprise: true } }, 400, "INVALID_ARGUMENT"],
      ["PUT", "/v1/kv/k", { body: [1, 2] }, 400, "INVALID_ARGUMENT"],
      ["POST", "/v1/kv/k/cas", { body: { expected: {}, value: "a" } }, 400, "INVALID_ARGUMENT"],
      ["GET", "/v1/kv/k?consistency=eventual", {}, 400, "INVALID_ARGUMENT"],
      ["GET", "/v1/kv?limit=0", {}, 400, "INVALID_ARGUMENT"],
      ["GET", "/v1/kv?limit=5000", {}, 400, "INVALID_ARGUMENT"],
      [
        "PUT",
        "/v1/kv/k",
        { body: { value: "a" }, headers: { "blixard-sequence": "1" } },
        400,
        "INVALID_ARGUMENT",
      ],
      ["PUT", "/v1/kv/k", { body: { value: "x".repeat(1024 * 1024 + 1) } }, 413, "TOO_LARGE"],
      ["PUT", "/v1/kv/k", { body: { value: "x".repeat(3 * 1024 * 1024) } }, 413, "TOO_LARGE"],
      ["PUT", `/v1/kv/${"k".repeat(1100)}`, { body: { value: "a" } }, 413, "TOO_LARGE"],
      ["GET", "/v1/kv/never-written", {}, 404, "NOT_FOUND"],
      ["POST", "/v1/cluster/members/99/promote", {}, 404, "NOT_FOUND"],
      ["DELETE", "/v1/cluster/members/99", {}, 404, "NOT_FOUND"],
      ["POST", "/v1/cluster/transfer-leader", { body: { id: 99 } }, 404, "NOT_FOUND"],
      ["DELETE", "/v1/cluster/members/abc", {}, 400, "INVALID_ARGUMENT"],
      ["POST", "/v1/cluster/members", { body: { id: "two" } }, 400, "INVALID_ARGUMENT"],
      ["GET", "/v1/no-such-route", {}, 404, "NOT_FOUND"],
    ];
    for (const [method, path, options, status, code] of cases) {
      for (const node of [follower!, leader]) {
        const response = await call(node.url, method, path, options);
        expect({ method, path, status: response.status, code: response.body.code }).toEqual({
          method,
          path,
          status,
          code,
        });
        expect(typeof response.body.message).toBe("string");
      }
    }
    const health = await call(follower!.url, "GET", "/healthz");
    expect(health.status).toBe(200);
    const still = await call(follower!.url, "PUT", "/v1/kv/still-serving", {
      body: { value: "y" },
    });
    expect(still.status).toBe(200);
  });
});
