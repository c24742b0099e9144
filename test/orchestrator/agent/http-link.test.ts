/**
 * The agent's HTTP link over a fake exchange: it starts on a server chosen by its id, moves to
 * the next one after a connection error or an UNAVAILABLE answer (not after other errors), tells
 * the server a deadline sooner than its own, maps error bodies to typed errors, checks the shape of an assignments and a disks answer, and refuses server
 * URLs that do not fit its TLS mode.
 */
import { describe, expect, it } from "vitest";
import {
  ConflictError,
  InvalidArgumentError,
  UnavailableError,
} from "../../../src/common/errors.js";
import {
  AGENT_REQUEST_TIMEOUT_MS,
  AgentHttpLink,
  SERVER_DEADLINE_MARGIN_MS,
  type HttpExchange,
} from "../../../src/orchestrator/agent/remote/http-link.js";
import { SILENT } from "./agent-fakes.js";

const SERVERS = ["https://s1:7000/", "https://s2:7000/", "https://s3:7000/"].map((u) => new URL(u));
const TLS = { ca: "ca", cert: "cert", key: "key" };

function link(nodeId: number, answer: (url: URL) => { status: number; text: string } | Error) {
  const asked: string[] = [];
  const exchange: HttpExchange = async ({ url }) => {
    asked.push(`${url.host}${url.pathname}`);
    const a = answer(url);
    if (a instanceof Error) throw a;
    return a;
  };
  return {
    asked,
    link: new AgentHttpLink({ nodeId, servers: SERVERS, tls: TLS, log: SILENT, exchange }),
  };
}

describe("AgentHttpLink", () => {
  it("starts on the server its id picks and moves on after a connection error or UNAVAILABLE", async () => {
    let calls = 0;
    const { asked, link: l } = link(4, () => {
      calls++;
      if (calls === 1) return new Error("connect ECONNREFUSED");
      if (calls === 2)
        return { status: 503, text: JSON.stringify({ code: "UNAVAILABLE", message: "no leader" }) };
      return { status: 200, text: JSON.stringify({ leaderId: 2, workerDeadAfterMs: 10000 }) };
    });
    await expect(l.heartbeat()).rejects.toBeInstanceOf(UnavailableError);
    await expect(l.heartbeat()).rejects.toBeInstanceOf(UnavailableError);
    expect(await l.heartbeat()).toEqual({ leaderId: 2, workerDeadAfterMs: 10000 });
    // 4 % 3 = 1: s2 first, then s3, then s1.
    expect(asked).toEqual([
      "s2:7000/v1/agent/heartbeat",
      "s3:7000/v1/agent/heartbeat",
      "s1:7000/v1/agent/heartbeat",
    ]);
  });

  it("tells the server a deadline sooner than its own, so a slow server answers TIMEOUT on a kept connection", async () => {
    const deadlines: [string, number, number][] = [];
    const exchange: HttpExchange = async ({ url, timeoutMs, serverTimeoutMs }) => {
      deadlines.push([url.pathname, timeoutMs, serverTimeoutMs]);
      if (url.pathname === "/v1/agent/assignments") {
        return {
          status: 200,
          text: JSON.stringify({ index: 1, worker: null, tasks: [], vms: [] }),
        };
      }
      return { status: 200, text: JSON.stringify({ leaderId: 1, workerDeadAfterMs: 10000 }) };
    };
    const l = new AgentHttpLink({ nodeId: 4, servers: SERVERS, tls: TLS, log: SILENT, exchange });
    await l.heartbeat();
    await l.propose({ type: "markWorkerOffline", nodeId: 4 });
    await l.assignments(0, 8000);
    expect(deadlines).toEqual([
      [
        "/v1/agent/heartbeat",
        AGENT_REQUEST_TIMEOUT_MS,
        AGENT_REQUEST_TIMEOUT_MS - SERVER_DEADLINE_MARGIN_MS,
      ],
      [
        "/v1/agent/reports",
        AGENT_REQUEST_TIMEOUT_MS,
        AGENT_REQUEST_TIMEOUT_MS - SERVER_DEADLINE_MARGIN_MS,
      ],
      ["/v1/agent/assignments", 8000 + AGENT_REQUEST_TIMEOUT_MS, 8000 + SERVER_DEADLINE_MARGIN_MS],
    ]);
  });

  it("stays on its server after an error that another server would repeat", async () => {
    const { asked, link: l } = link(3, () => ({
      status: 409,
      text: JSON.stringify({ code: "CONFLICT", message: "node 3 is a server" }),
    }));
    await expect(l.heartbeat()).rejects.toBeInstanceOf(ConflictError);
    await expect(l.heartbeat()).rejects.toThrow("node 3 is a server");
    expect(asked).toEqual(["s1:7000/v1/agent/heartbeat", "s1:7000/v1/agent/heartbeat"]);
  });

  it("asks for its own node's assignments and refuses a malformed answer", async () => {
    let text = JSON.stringify({ index: 7, worker: null, tasks: [], vms: [] });
    const { asked, link: l } = link(5, (url) => {
      expect(url.searchParams.get("nodeId")).toBe("5");
      expect(url.searchParams.get("after")).toBe("3");
      return { status: 200, text };
    });
    expect(await l.assignments(3, 100)).toEqual({ index: 7, worker: null, tasks: [], vms: [] });
    text = JSON.stringify({ index: "7", tasks: [] });
    await expect(l.assignments(3, 100)).rejects.toBeInstanceOf(UnavailableError);
    expect(asked.length).toBe(2);
  });

  it("refuses no servers, and URLs whose scheme does not fit the TLS mode", () => {
    expect(() => new AgentHttpLink({ nodeId: 4, servers: [], tls: TLS, log: SILENT })).toThrow(
      InvalidArgumentError,
    );
    expect(
      () =>
        new AgentHttpLink({
          nodeId: 4,
          servers: [new URL("http://s1:7000")],
          tls: TLS,
          log: SILENT,
        }),
    ).toThrow(/not https:/);
    expect(
      () => new AgentHttpLink({ nodeId: 4, servers: [new URL("https://s1:7000")], log: SILENT }),
    ).toThrow(/--insecure/);
  });

  it("reads a disk lookup's verdicts, keeping only the names asked about, and refuses a malformed answer", async () => {
    let text = JSON.stringify({
      disks: [
        { name: "a", verdict: "deleted" },
        { name: "b", verdict: "keep" },
        { name: "c", verdict: "elsewhere" },
        { name: "not-asked", verdict: "deleted" },
        { name: "d", verdict: "burn" },
      ],
    });
    const { asked, link: l } = link(4, () => ({ status: 200, text }));
    const verdicts = await l.disks(["a", "b", "c", "d"]);
    expect([...verdicts]).toEqual([
      ["a", "deleted"],
      ["b", "keep"],
      ["c", "elsewhere"],
    ]);
    expect(asked).toEqual(["s2:7000/v1/agent/disks"]);
    text = JSON.stringify({ disks: "all of them" });
    await expect(l.disks(["a"])).rejects.toBeInstanceOf(UnavailableError);
  });
});
