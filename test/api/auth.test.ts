/**
 * Authorization of every route, in process. The list of mutating routes comes from the route
 * table itself, so a route added later without the right permission fails here.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CLUSTER_ID,
  TEST_CERT_HEADER,
  bearer,
  concreteUrl,
  startAuthFixture,
  type AuthFixture,
} from "./auth-fixture.js";

let fixture: AuthFixture;
beforeEach(async () => {
  fixture = await startAuthFixture();
});
afterEach(async () => {
  await fixture.close();
});

/** Routes that answer without a credential, by design (see system-routes.ts and the README). */
const OPEN = new Set([
  "GET /healthz",
  "GET /readyz",
  "GET /metrics",
  "GET /openapi.json",
  "POST /v1/acl/bootstrap",
  // The dashboard's static files (a browser loads the page before it has a token to send).
  "GET /ui",
  "GET /ui/:file",
]);

async function send(
  method: string,
  url: string,
  headers: Record<string, string> = {},
  body?: unknown,
) {
  const response = await fixture.server.app.inject({
    method: method as "GET",
    url,
    headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  let parsed: { code?: string; message?: string } = {};
  try {
    parsed = response.json();
  } catch {
    // Not JSON (metrics).
  }
  return { status: response.statusCode, body: parsed };
}

/** Past authentication and authorization (the handler answered, whatever it said). */
const authorized = (status: number) => status !== 401 && status !== 403;

async function tokenWith(management: string, rules: string[] | undefined): Promise<string> {
  const name = `p${Math.random().toString(36).slice(2, 8)}`;
  const { parseRule } = await import("../../src/statemachine/acl/policy.js");
  if (rules !== undefined) {
    const policy = await send("PUT", `/v1/acl/policies/${name}`, bearer(management), {
      rules: rules.map(parseRule),
    });
    expect(policy.status).toBe(200);
  }
  const created = await send("POST", "/v1/acl/tokens", bearer(management), {
    name,
    policies: rules === undefined ? [] : [name],
  });
  expect(created.status).toBe(200);
  return (created.body as unknown as { secret: string }).secret;
}

/** The headers of a request presenting node `id`'s certificate. */
const node = (id: number) => ({ [TEST_CERT_HEADER]: `dns=node-${id}.${CLUSTER_ID}.blixard` });

describe("every route has a permission", () => {
  it("every mutating route answers 401 without a credential and 403 to a token with no policy", async () => {
    const management = await fixture.bootstrap();
    const powerless = await tokenWith(management, undefined);
    const mutating = fixture.server.routes.filter(
      (route) => route.method !== "GET" && !OPEN.has(`${route.method} ${route.url}`),
    );
    expect(mutating.length).toBeGreaterThanOrEqual(20);
    for (const route of mutating) {
      const url = concreteUrl(route.url);
      const anonymous = await send(route.method, url, {}, {});
      expect(anonymous, `${route.method} ${route.url}`).toMatchObject({
        status: 401,
        body: { code: "UNAUTHENTICATED" },
      });
      const denied = await send(route.method, url, bearer(powerless), {});
      expect(denied, `${route.method} ${route.url}`).toMatchObject({
        status: 403,
        body: { code: "PERMISSION_DENIED" },
      });
      expect(denied.body.message).toMatch(/lacks permission [a-z]+:[a-z]+/);
    }
  });

  it("every read route but the open ones answers 401 without a credential", async () => {
    for (const route of fixture.server.routes.filter((r) => r.method === "GET")) {
      const open = OPEN.has(`${route.method} ${route.url}`);
      const response = await send("GET", concreteUrl(route.url));
      if (open) expect(response.status, route.url).not.toBe(401);
      else
        expect(response, route.url).toMatchObject({
          status: 401,
          body: { code: "UNAUTHENTICATED" },
        });
    }
  });

  it("refuses unknown, malformed and revoked tokens with 401", async () => {
    const management = await fixture.bootstrap();
    const token = await tokenWith(management, ["kv:read"]);
    expect((await send("GET", "/v1/kv/a", bearer("bxt_nope"))).status).toBe(401);
    expect((await send("GET", "/v1/kv/a", { authorization: "Basic abc" })).status).toBe(401);
    expect((await send("GET", "/v1/kv/a", bearer(token))).status).toBe(404);
    const accessor = (await send("GET", "/v1/acl/whoami", bearer(token))).body as unknown as {
      accessorId: string;
    };
    expect(
      (await send("DELETE", `/v1/acl/tokens/${accessor.accessorId}`, bearer(management))).status,
    ).toBe(200);
    // The cached identity is dropped by the revoke's apply: the very next request is refused.
    expect(await send("GET", "/v1/kv/a", bearer(token))).toMatchObject({ status: 401 });
  });
});

describe("policies", () => {
  it("a kv:read:app/ token reads app/ but cannot write it or read elsewhere", async () => {
    const management = await fixture.bootstrap();
    expect((await send("PUT", "/v1/kv/app%2Fx", bearer(management), { value: "v1" })).status).toBe(
      200,
    );
    const reader = await tokenWith(management, ["kv:read:app/"]);
    const read = await send("GET", "/v1/kv/app%2Fx", bearer(reader));
    expect(read.status).toBe(200);
    expect(await send("PUT", "/v1/kv/app%2Fx", bearer(reader), { value: "v2" })).toMatchObject({
      status: 403,
      body: { code: "PERMISSION_DENIED", message: expect.stringContaining("kv:write:app/x") },
    });
    expect((await send("GET", "/v1/kv/other", bearer(reader))).status).toBe(403);
    expect((await send("GET", "/v1/kv?prefix=app%2F", bearer(reader))).status).not.toBe(403);
    expect((await send("GET", "/v1/kv", bearer(reader))).status).toBe(403);
    expect(fixture.machine.read("app/x")?.value).toEqual(new TextEncoder().encode("v1"));
  });

  it("a followed task or VM log needs what the plain route needs: task read, VM read", async () => {
    const management = await fixture.bootstrap();
    const kvOnly = await tokenWith(management, ["kv:read"]);
    const taskReader = await tokenWith(management, ["task:read"]);
    const vmReader = await tokenWith(management, ["vm:read"]);
    const task = "/v1/tasks/t-1/logs?follow=true";
    const vm = "/v1/vms/web/logs?follow=true";
    expect((await send("GET", task)).status).toBe(401);
    expect((await send("GET", vm)).status).toBe(401);
    expect(await send("GET", task, bearer(kvOnly))).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining("task:read") },
    });
    expect((await send("GET", vm, bearer(taskReader))).status).toBe(403);
    // Past authorization: no such task or VM.
    expect((await send("GET", task, bearer(taskReader))).status).toBe(404);
    expect((await send("GET", vm, bearer(vmReader))).status).not.toBe(403);
  });

  it("a policy change applies to the next request of a token holding it", async () => {
    const management = await fixture.bootstrap();
    const token = await tokenWith(management, ["kv:read:a/"]);
    const name = (
      (await send("GET", "/v1/acl/whoami", bearer(token))).body as unknown as { policies: string[] }
    ).policies[0];
    expect((await send("PUT", "/v1/kv/b%2F1", bearer(token), { value: "x" })).status).toBe(403);
    await send("PUT", `/v1/acl/policies/${name}`, bearer(management), {
      rules: [{ resource: "kv", access: "write", prefix: "b/" }],
    });
    expect((await send("PUT", "/v1/kv/b%2F1", bearer(token), { value: "x" })).status).toBe(200);
    expect((await send("GET", "/v1/kv/a%2F1", bearer(token))).status).toBe(403);
  });

  it("bootstrap succeeds once; whoami says who the caller is", async () => {
    const management = await fixture.bootstrap();
    expect(await send("POST", "/v1/acl/bootstrap")).toMatchObject({
      status: 409,
      body: { code: "CONFLICT" },
    });
    expect(await send("GET", "/v1/acl/whoami", bearer(management))).toMatchObject({
      status: 200,
      body: { kind: "token", management: true },
    });
    const tokens = await send("GET", "/v1/acl/tokens", bearer(management));
    expect(JSON.stringify(tokens.body)).not.toContain(management);
    expect(JSON.stringify(tokens.body)).not.toMatch(/secretHash/);
  });
});

describe("certificate identities", () => {
  const report = (nodeId: number) => ({
    command: {
      type: "registerWorker",
      nodeId,
      capacity: { cpuMillis: 1000, memoryMb: 512, diskGb: 1 },
      features: [],
    },
  });

  it("node N may report for node N only; a fake node 99 or another node's report is refused", async () => {
    // Authorized: it reaches the (fake) orchestrator, whatever that answers.
    expect(authorized((await send("POST", "/v1/agent/reports", node(2), report(2))).status)).toBe(
      true,
    );
    expect(await send("POST", "/v1/agent/reports", node(2), report(99))).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining("node:report:99") },
    });
    expect((await send("POST", "/v1/agent/reports", node(2), report(3))).status).toBe(403);
    const finished = {
      command: {
        type: "taskFinished",
        id: "t",
        nodeId: 3,
        attempt: 1,
        outcome: "succeeded",
        result: {
          exitCode: 0,
          stdout: "forged",
          stderr: "",
          stdoutTruncated: false,
          stderrTruncated: false,
        },
      },
    };
    expect((await send("POST", "/v1/agent/reports", node(2), finished)).status).toBe(403);
    // A node identity is no operator.
    expect((await send("DELETE", "/v1/cluster/members/1", node(2))).status).toBe(403);
    expect((await send("POST", "/v1/tasks", node(2), {})).status).toBe(403);
  });

  it("a batch of reports is authorized by its node: node N sends node N's batch only", async () => {
    const batch = (nodeId: number, about: number) => ({
      command: {
        type: "agentReports",
        nodeId,
        reports: [{ type: "taskStarted", id: "t", nodeId: about, attempt: 1 }],
      },
    });
    expect(authorized((await send("POST", "/v1/agent/reports", node(2), batch(2, 2))).status)).toBe(
      true,
    );
    expect(await send("POST", "/v1/agent/reports", node(2), batch(3, 3))).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining("node:report:3") },
    });
    // Its own batch smuggling a report about another node is malformed: refused before proposing.
    expect(await send("POST", "/v1/agent/reports", node(2), batch(2, 3))).toMatchObject({
      status: 400,
      body: {
        code: "INVALID_ARGUMENT",
        message: expect.stringContaining("not the reporting node 2"),
      },
    });
  });

  it("an agent-only node's certificate polls, heartbeats and looks up disks for its own id only", async () => {
    // Node 4 is no member of the fixture's cluster: its certificate still names node 4.
    const poll = await send("GET", "/v1/agent/assignments?nodeId=4&after=0&waitMs=0", node(4));
    expect(poll.status).toBe(200);
    expect(poll.body).toMatchObject({ worker: null, tasks: [], vms: [] });
    expect((await send("POST", "/v1/agent/heartbeat", node(4), { nodeId: 4 })).status).toBe(200);
    expect(
      (await send("GET", "/v1/agent/assignments?nodeId=5&after=0&waitMs=0", node(4))).status,
    ).toBe(403);
    expect((await send("POST", "/v1/agent/heartbeat", node(4), { nodeId: 5 })).status).toBe(403);
    // Its disk lookups likewise: about its own disks only, and a bounded list of names.
    expect(
      await send("POST", "/v1/agent/disks", node(4), { nodeId: 4, names: ["a"] }),
    ).toMatchObject({ status: 200, body: { disks: [{ name: "a", verdict: "deleted" }] } });
    expect(
      (await send("POST", "/v1/agent/disks", node(4), { nodeId: 5, names: ["a"] })).status,
    ).toBe(403);
    const tooMany = Array.from({ length: 257 }, (_, i) => `vm-${i}`);
    expect(
      (await send("POST", "/v1/agent/disks", node(4), { nodeId: 4, names: tooMany })).status,
    ).toBe(400);
    expect((await send("POST", "/v1/agent/disks", {}, { nodeId: 4, names: [] })).status).toBe(401);
    expect((await send("GET", "/v1/agent/assignments?nodeId=4")).status).toBe(401);
    // A malformed id is refused before anything reads it.
    expect((await send("GET", "/v1/agent/assignments?nodeId=x", node(4))).status).toBe(403);
    expect(
      (await send("GET", "/v1/agent/assignments?nodeId=4&waitMs=999999999", node(4))).status,
    ).toBe(400);
  });

  it("only a member's certificate relays agents' heartbeats to the leader", async () => {
    const batch = { nodeIds: [4, 5] };
    // The fixture's configuration is node 1 alone.
    expect((await send("POST", "/v1/agent/heartbeats", node(1), batch)).status).toBe(200);
    expect((await send("POST", "/v1/agent/heartbeats", node(2), batch)).status).toBe(403);
    // An agent-only worker speaks for itself alone: it cannot vouch for others.
    expect(await send("POST", "/v1/agent/heartbeats", node(4), batch)).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining("cluster:relay") },
    });
    expect((await send("POST", "/v1/agent/heartbeats", {}, batch)).status).toBe(401);
  });

  it("a client certificate holds the policies bound to its common name", async () => {
    const management = await fixture.bootstrap();
    const alice = { [TEST_CERT_HEADER]: "cn=alice" };
    expect((await send("GET", "/v1/tasks", alice)).status).toBe(403);
    await send("PUT", "/v1/acl/policies/tasks", bearer(management), {
      rules: [{ resource: "task", access: "read" }],
    });
    expect(
      (
        await send("PUT", "/v1/acl/cert-bindings/alice", bearer(management), {
          policies: ["tasks"],
        })
      ).status,
    ).toBe(200);
    expect((await send("GET", "/v1/tasks", alice)).status).toBe(200);
    expect((await send("POST", "/v1/tasks", alice, {})).status).toBe(403);
  });

  it("the forwarded-identity header is refused unless a member node's certificate carries it", async () => {
    const management = await fixture.bootstrap();
    const forwarded = { "blixard-forwarded-identity": "node:1" };
    expect((await send("POST", "/v1/agent/reports", forwarded, report(1))).status).toBe(403);
    expect(
      (await send("POST", "/v1/agent/reports", { ...forwarded, ...bearer(management) }, report(1)))
        .status,
    ).toBe(403);
    expect(
      (
        await send(
          "POST",
          "/v1/agent/reports",
          { ...forwarded, [TEST_CERT_HEADER]: "cn=alice" },
          report(1),
        )
      ).status,
    ).toBe(403);
    // Node 7 has a valid certificate but is not a member (the configuration is {1}).
    expect(
      (await send("POST", "/v1/agent/reports", { ...forwarded, ...node(7) }, report(1))).status,
    ).toBe(403);
    // Member node 1 forwarding for node 1: accepted, and re-authorized as node 1.
    expect(
      authorized(
        (await send("POST", "/v1/agent/reports", { ...forwarded, ...node(1) }, report(1))).status,
      ),
    ).toBe(true);
    expect(
      (
        await send(
          "POST",
          "/v1/agent/reports",
          { "blixard-forwarded-identity": "node:5", ...node(1) },
          report(1),
        )
      ).status,
    ).toBe(403);
  });
});

describe("audit log", () => {
  it("writes one line per mutating request with identity, route, target and outcome, never a secret", async () => {
    const management = await fixture.bootstrap();
    const created = await send("POST", "/v1/acl/tokens", bearer(management), { name: "ci" });
    const secret = (created.body as unknown as { secret: string }).secret;
    await send("PUT", "/v1/kv/app%2Fk", bearer(management), { value: "s3cret-value" });
    await send("PUT", "/v1/kv/app%2Fk", {}, { value: "x" });
    await send("GET", "/v1/kv/app%2Fk", bearer(management));
    const lines = fixture.audit;
    expect(lines.map((l) => [l["method"], l["route"], l["status"]])).toEqual([
      ["POST", "/v1/acl/bootstrap", 200],
      ["POST", "/v1/acl/tokens", 200],
      ["PUT", "/v1/kv/:key", 200],
      ["PUT", "/v1/kv/:key", 401],
    ]);
    expect(lines[2]).toMatchObject({
      identity: { kind: "token", name: "bootstrap" },
      target: { key: "app/k" },
      permission: "kv:write:app/k",
      forwardedFrom: false,
    });
    expect(lines[3]).toMatchObject({ identity: { kind: "none" }, code: "UNAUTHENTICATED" });
    // Each line's time is an ISO timestamp, never before the line above it.
    const times = lines.map((l) => String(l["time"]));
    for (const time of times) expect(time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect([...times].sort()).toEqual(times);
    const text = JSON.stringify(lines);
    for (const hidden of [management, secret, "s3cret-value"]) expect(text).not.toContain(hidden);
  });

  it("records agents' heartbeats only when they are refused", async () => {
    const before = fixture.audit.length;
    expect((await send("POST", "/v1/agent/heartbeat", node(4), { nodeId: 4 })).status).toBe(200);
    expect((await send("POST", "/v1/agent/heartbeats", node(1), { nodeIds: [4] })).status).toBe(
      200,
    );
    expect((await send("POST", "/v1/agent/heartbeat", node(4), { nodeId: 5 })).status).toBe(403);
    expect((await send("POST", "/v1/agent/heartbeats", node(4), { nodeIds: [4] })).status).toBe(
      403,
    );
    const lines = fixture.audit.slice(before);
    expect(lines.map((l) => [l["route"], l["status"]])).toEqual([
      ["/v1/agent/heartbeat", 403],
      ["/v1/agent/heartbeats", 403],
    ]);
  });
});
