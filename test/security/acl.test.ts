/**
 * Authorization on real processes: a 3-node cluster started with the API enforcing ACLs
 * (`--api-auth enforce`, the default once nodes carry certificates). Unauthenticated and
 * under-privileged calls are refused with the right status, on the leader and through a
 * follower (which forwards the bearer token unchanged), the node stays up and the data intact,
 * and each mutating request leaves an audit line without secrets.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueNodeInto } from "../../src/cli/tls/ca-dir.js";
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

/** Routes that answer without a credential, by design (as in test/api/auth.test.ts). */
const OPEN = new Set([
  "GET /healthz",
  "GET /readyz",
  "GET /metrics",
  "GET /openapi.json",
  "POST /v1/acl/bootstrap",
]);

/** A concrete path for an OpenAPI path template (every `{param}` filled in). */
function concretePath(template: string): string {
  return template.replace(/\{([A-Za-z0-9_]+)\}/g, (_, name: string) =>
    name === "id" ? "2" : `x${name}`,
  );
}

/** One HTTPS request presenting `credentials` (a client certificate of the cluster's CA). */
function httpsAs(
  url: string,
  method: string,
  path: string,
  body: unknown,
  credentials: { ca: string; cert: string; key: string },
): Promise<{ status: number; body: { code?: string; message?: string } }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpsRequest(
      new URL(path, url),
      {
        method,
        headers:
          body === undefined
            ? {}
            : {
                "content-type": "application/json",
                "content-length": String(Buffer.byteLength(JSON.stringify(body))),
              },
        ...credentials,
        signal: AbortSignal.timeout(5000),
      },
      (response) => {
        let text = "";
        response.on("data", (d: Buffer) => (text += d.toString()));
        response.on("error", reject);
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }),
        );
      },
    );
    outgoing.on("error", reject);
    outgoing.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe("every mutating route of a real node, from its own route table", () => {
  it("answers 401 without a credential and 403 to a token without a policy, on every node", async () => {
    const doc = await http(cluster.nodes[0]!.apiUrl, "GET", "/openapi.json", {
      withoutCertificate: true,
    });
    expect(doc.status).toBe(200);
    const paths = (doc.body as { paths: Record<string, Record<string, unknown>> }).paths;
    const mutating = Object.entries(paths)
      .flatMap(([path, operations]) =>
        Object.keys(operations)
          .filter((m) => m !== "get")
          .map((m) => ({ method: m.toUpperCase(), path })),
      )
      .filter((r) => !OPEN.has(`${r.method} ${r.path.replace(/\{([A-Za-z0-9_]+)\}/g, ":$1")}`));
    // Membership, leader transfer, settings, agent reports, tasks, VMs, kv, ACLs: all of them.
    expect(mutating.length).toBeGreaterThanOrEqual(20);
    for (const needle of [
      "/v1/cluster/members",
      "/v1/cluster/transfer",
      "/v1/agent/reports",
      "/v1/tasks",
    ]) {
      expect(
        mutating.some((r) => r.path.startsWith(needle)),
        needle,
      ).toBe(true);
    }
    const created = await http(cluster.nodes[0]!.apiUrl, "POST", "/v1/acl/tokens", {
      body: JSON.stringify({ name: "powerless", policies: [] }),
      headers: auth(management),
    });
    expect(created.status).toBe(200);
    const powerless = (created.body as { secret: string }).secret;
    const before = await cluster.status(await cluster.waitForLeader());

    for (const node of cluster.nodes) {
      // Each node learns the token when it applies its creation (no Raft round per request).
      await until(
        async () =>
          (await http(node.apiUrl, "GET", "/v1/kv/x", { headers: auth(powerless) })).status === 403
            ? true
            : undefined,
        `node ${node.id} to know the powerless token`,
        10_000,
      );
      for (const route of mutating) {
        const what = `${route.method} ${route.path} on node ${node.id}`;
        const path = concretePath(route.path);
        // Node's client would send a DELETE's body chunked, which the server refuses outright.
        const body = route.method === "DELETE" ? {} : { body: "{}" };
        const anonymous = await http(node.apiUrl, route.method, path, {
          ...body,
          withoutCertificate: true,
        });
        expect(anonymous, what).toMatchObject({ status: 401, body: { code: "UNAUTHENTICATED" } });
        const denied = await http(node.apiUrl, route.method, path, {
          ...body,
          headers: auth(powerless),
          withoutCertificate: true,
        });
        expect(denied, what).toMatchObject({ status: 403, body: { code: "PERMISSION_DENIED" } });
      }
    }

    // Every node is up; the membership, the leader's term and the data are as before.
    const leader = await cluster.waitForLeader();
    const after = await cluster.status(leader);
    expect(after?.config.voters).toEqual([1, 2, 3]);
    expect(after?.term).toBe(before?.term);
    const value = await http(cluster.nodes[2]!.apiUrl, "GET", "/v1/kv/app%2Fconfig", {
      headers: auth(management),
    });
    expect(value.body).toMatchObject({ entry: { value: "v1" } });
  }, 120_000);

  it("lets a node's genuine certificate report for that node only: fake node 99 and forged task results are refused", async () => {
    const scratch = mkdtempSync(join(tmpdir(), "blixard-acl-node-cert-"));
    try {
      const files = await issueNodeInto(cluster.pki.dir, { nodeId: 2 }, { out: scratch });
      const node2 = {
        ca: readFileSync(files.ca, "utf8"),
        cert: readFileSync(files.cert, "utf8"),
        key: readFileSync(files.key, "utf8"),
      };
      const fake = {
        command: {
          type: "registerWorker",
          nodeId: 99,
          capacity: { cpuMillis: 64_000, memoryMb: 1_000_000, diskGb: 1000 },
          features: [],
        },
      };
      const forged = {
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
      for (const node of cluster.nodes) {
        const worker = await httpsAs(node.apiUrl, "POST", "/v1/agent/reports", fake, node2);
        expect(worker).toMatchObject({ status: 403, body: { code: "PERMISSION_DENIED" } });
        expect(worker.body.message).toContain("node:report:99");
        const result = await httpsAs(node.apiUrl, "POST", "/v1/agent/reports", forged, node2);
        expect(result).toMatchObject({ status: 403, body: { code: "PERMISSION_DENIED" } });
        // A node's certificate is no operator: no membership change, no task.
        expect(
          (await httpsAs(node.apiUrl, "DELETE", "/v1/cluster/members/1", undefined, node2)).status,
        ).toBe(403);
        expect((await httpsAs(node.apiUrl, "POST", "/v1/tasks", {}, node2)).status).toBe(403);
      }
      const workers = await http(cluster.nodes[0]!.apiUrl, "GET", "/v1/workers", {
        headers: auth(management),
      });
      expect(workers.status).toBe(200);
      const ids = (workers.body as { workers: { nodeId: number }[] }).workers.map((w) => w.nodeId);
      expect(ids.length).toBeGreaterThan(0);
      expect(ids).not.toContain(99);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
