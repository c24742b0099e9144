/**
 * The coordination routes in process, with authorization enforced: leases (a key put under one
 * vanishes on revoke), keep-alive and time-to-live, txns with their per-op results, the wait
 * that returns when a key changes, and the permissions each route asks for.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bearer, startAuthFixture, type AuthFixture } from "./auth-fixture.js";

let fixture: AuthFixture;
let auth: Record<string, string>;

beforeEach(async () => {
  fixture = await startAuthFixture();
  auth = bearer(await fixture.bootstrap());
});

afterEach(async () => {
  await fixture.close();
});

async function send(method: string, url: string, body?: unknown, headers = auth) {
  const response = await fixture.server.app.inject({
    method: method as "GET",
    url,
    headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  return { status: response.statusCode, body: response.json() as Record<string, unknown> };
}

describe("coordination routes", () => {
  it("grant, put under the lease, keep-alive, time-to-live, revoke deletes the key", async () => {
    const granted = await send("POST", "/v1/leases", { ttlMs: 5000 });
    expect(granted).toEqual({ status: 200, body: { id: 1, ttlMs: 5000 } });
    expect((await send("PUT", "/v1/kv/app%2Fa", { value: "x", lease: 1 })).status).toBe(200);
    const missing = await send("PUT", "/v1/kv/app%2Fb", { value: "x", lease: 7 });
    expect(missing.body).toMatchObject({ code: "NOT_FOUND" });
    expect(await send("POST", "/v1/leases/keepalive", { ids: [1, 9] })).toEqual({
      status: 200,
      body: {
        leases: [
          { id: 1, ttlMs: 5000 },
          { id: 9, ttlMs: -1 },
        ],
      },
    });
    const ttl = await send("GET", "/v1/leases/1?keys=true");
    expect(ttl.body).toMatchObject({ id: 1, ttlMs: 5000, keys: ["app/a"] });
    expect(ttl.body["remainingMs"]).toBeGreaterThan(4000);
    expect(await send("DELETE", "/v1/leases/1")).toEqual({
      status: 200,
      body: { deletedKeys: 1 },
    });
    expect((await send("GET", "/v1/kv/app%2Fa")).status).toBe(404);
    expect((await send("GET", "/v1/leases/1")).status).toBe(404);
    expect((await send("DELETE", "/v1/leases/1")).status).toBe(404);
  });

  it("a txn takes a branch by its compares and returns each op's result", async () => {
    const create = {
      compare: [{ key: "app/k", target: "createRevision", operator: "equal", number: 0 }],
      success: [{ op: "put", key: "app/k", value: "one" }],
      failure: [{ op: "get", key: "app/k" }],
    };
    expect(await send("POST", "/v1/txn", create)).toEqual({
      status: 200,
      body: { succeeded: true, revision: 1, results: [{ op: "put", revision: 1 }] },
    });
    const again = await send("POST", "/v1/txn", create);
    expect(again.body).toMatchObject({
      succeeded: false,
      results: [{ op: "get", entry: { key: "app/k", value: "one", createRevision: 1 } }],
    });
    const bad = await send("POST", "/v1/txn", {
      compare: [{ key: "app/k", target: "version", operator: "equal", value: "x" }],
      success: [],
    });
    expect(bad).toMatchObject({ status: 400, body: { code: "INVALID_ARGUMENT" } });
  });

  it("a wait returns changed when the key is deleted, unchanged when its time is up", async () => {
    await send("PUT", "/v1/kv/app%2Fw", { value: "x" });
    const created = await send("GET", "/v1/kv/app%2Fw");
    const revision = (created.body["entry"] as { createRevision: number }).createRevision;
    const quiet = await send("GET", `/v1/wait/app%2Fw?createRevision=${revision}&waitMs=50`);
    expect(quiet.body).toMatchObject({ changed: false, createRevision: revision });
    const waiting = send("GET", `/v1/wait/app%2Fw?createRevision=${revision}&waitMs=5000`);
    await send("DELETE", "/v1/kv/app%2Fw");
    expect((await waiting).body).toMatchObject({ changed: true, createRevision: 0 });
  });

  it("asks for lease rights on leases and kv rights on the txn's common key prefix", async () => {
    const name = "coord-app";
    await send("PUT", `/v1/acl/policies/${name}`, {
      rules: [{ resource: "kv", access: "write", prefix: "app/" }],
    });
    const created = await send("POST", "/v1/acl/tokens", { name, policies: [name] });
    const limited = bearer((created.body as { secret: string }).secret);
    const txn = (key: string) => ({ compare: [], success: [{ op: "put", key, value: "v" }] });
    expect((await send("POST", "/v1/txn", txn("app/x"), limited)).status).toBe(200);
    expect((await send("POST", "/v1/txn", txn("other/x"), limited)).status).toBe(403);
    expect((await send("POST", "/v1/leases", { ttlMs: 5000 }, limited)).status).toBe(403);
  });
});
