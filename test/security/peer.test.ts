/**
 * Peer input against real `blixard node start` processes (issue #11): forged heartbeats from a
 * peer that passed the hello (term 2^53-1, commit 1e12), a flood of pre-hello sockets announcing
 * huge frames, and a fatal error, which must end the process non-zero within a second. The
 * certificate ↔ hello identity check runs against real TLS transports in
 * test/transport/tls.test.ts (`node start` takes no TLS flags on this branch yet).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlixardClient } from "../../src/client/index.js";
import { freePorts } from "../../src/cli/dev/ports.js";
import { FAIL_STORAGE_ENV } from "../../src/cli/node/fault-injection.js";
import { message, MessageType, type Message } from "../../src/raft/types.js";
import { encodeBatchFrame } from "../../src/transport/batch-codec.js";
import { encodeFrame, frame, PROTOCOL_VERSION } from "../../src/transport/codec.js";
import { HelloSchema } from "../../src/transport/gen/blixard/raft/v1/raft_pb.js";
import { BIN, cli, ensureBuilt, exitWithin, until } from "../cli/helpers.js";

const CLUSTER = "peer-security";

interface NodeProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

function startNode(args: readonly string[], env: NodeJS.ProcessEnv = {}): NodeProcess {
  const child = spawn(process.execPath, [BIN, "node", "start", "--insecure", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  return { child, output: () => output, exited };
}

/** The JSON log lines a node wrote whose message contains `text`. */
function logLines(node: NodeProcess, text: string): Record<string, unknown>[] {
  return node
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => String(l["msg"]).includes(text));
}

function rssKiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]);
}

function helloFrame(fromId: number, toId: number): Uint8Array {
  const value = create(HelloSchema, {
    clusterId: CLUSTER,
    fromId: BigInt(fromId),
    toId: BigInt(toId),
    protocolVersion: PROTOCOL_VERSION,
  });
  return encodeFrame(frame({ case: "hello", value }));
}

/** Connects to a peer port; resolves once connected, with a promise of its close. */
async function connect(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = createConnection({ host: "127.0.0.1", port });
  socket.on("error", () => undefined);
  socket.resume();
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  return { socket, closed };
}

/** Speaks as member `fromId` (the hello is all plaintext peers prove) and sends `messages`. */
async function forge(
  port: number,
  fromId: number,
  toId: number,
  messages: Message[],
): Promise<Socket> {
  const { socket } = await connect(port);
  socket.write(helloFrame(fromId, toId));
  socket.write(encodeBatchFrame({ clusterId: CLUSTER, from: fromId, to: toId, messages }));
  return socket;
}

describe("peer input against real node processes", () => {
  const root = mkdtempSync(join(tmpdir(), "blixard-peer-security-"));
  const ids = [1, 2, 3];
  const dirs = ids.map((id) => join(root, `node-${id}`));
  let nodes: NodeProcess[] = [];
  let peerPorts: number[] = [];
  let apis: string[] = [];

  beforeAll(ensureBuilt, 180_000);

  afterAll(() => {
    for (const node of nodes) if (node.child.exitCode === null) node.child.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  });

  async function leader(): Promise<{ id: number; term: number }> {
    const clients = apis.map(
      (url) => new BlixardClient({ endpoints: [url], timeoutMs: 500, retries: 0 }),
    );
    return until(
      async () => {
        const statuses = await Promise.all(clients.map((c) => c.status().catch(() => undefined)));
        const first = statuses[0];
        if (first === undefined || first.leader === null) return undefined;
        const agreed = statuses.every((s) => s !== undefined && s.leader === first.leader);
        return agreed ? { id: first.leader, term: first.term } : undefined;
      },
      "a leader known to every node",
      60_000,
    );
  }

  async function put(key: string): Promise<void> {
    const result = await cli(["kv", "put", key, "v", "--endpoints", apis.join(",")]);
    expect(result.status, result.stderr).toBe(0);
  }

  it("starts a 3-node cluster", async () => {
    const ports = await freePorts(6);
    peerPorts = ports.slice(0, 3);
    apis = ids.map((_, i) => `http://127.0.0.1:${ports[3 + i]}`);
    const members = ids
      .map((id, i) => `${id}=127.0.0.1:${ports[i]}@127.0.0.1:${ports[3 + i]}`)
      .join(",");
    nodes = ids.map((id, i) =>
      startNode([
        "--id",
        String(id),
        "--data-dir",
        dirs[i]!,
        "--peer-listen",
        `127.0.0.1:${ports[i]}`,
        "--api-listen",
        `127.0.0.1:${ports[3 + i]}`,
        "--initial-members",
        members,
        "--cluster-id",
        CLUSTER,
      ]),
    );
    await leader();
    await put("before");
  }, 60_000);

  it("refuses a heartbeat with term 2^53-1 and clamps one with commit 1e12; the cluster keeps electing leaders after a restart", async () => {
    const { id: leaderId, term } = await leader();
    const target = ids.find((id) => id !== leaderId)!;
    const port = peerPorts[target - 1]!;
    const huge = await forge(port, leaderId, target, [
      message({ type: MessageType.Heartbeat, from: leaderId, to: target, term: 2 ** 53 - 1 }),
    ]);
    await until(
      () =>
        logLines(nodes[target - 1]!, "dropped invalid messages from peer").length > 0
          ? true
          : undefined,
      "the refusal of the term",
    );
    huge.destroy();
    const commit = await forge(port, leaderId, target, [
      message({ type: MessageType.Heartbeat, from: leaderId, to: target, term, commit: 1e12 }),
    ]);
    await until(
      () =>
        logLines(nodes[target - 1]!, "heartbeat commit beyond our last index").length > 0
          ? true
          : undefined,
      "the clamped commit",
    );
    commit.destroy();
    for (const node of nodes) expect(node.child.exitCode).toBe(null);
    await put("after-forgery");

    // Restart every node from its data directory: nothing absurd was persisted.
    for (const node of nodes) node.child.kill("SIGTERM");
    const codes = await Promise.all(nodes.map((n) => exitWithin(n.exited, 15_000)));
    expect(codes).toEqual([0, 0, 0]);
    nodes = dirs.map((dir) => startNode(["--data-dir", dir]));
    const after = await leader();
    expect(after.term).toBeLessThan(2 ** 52);
    await put("after-restart");
  }, 90_000);

  it("keeps memory bounded under 1,000 pre-hello sockets announcing 16 MiB frames, and still serves", async () => {
    const { id: leaderId } = await leader();
    const victim = nodes[leaderId - 1]!;
    const pid = victim.child.pid!;
    const before = rssKiB(pid);
    const header = new Uint8Array(8);
    new DataView(header.buffer).setUint32(0, 16 * 1024 * 1024 - 1);
    let peak = before;
    const sockets: Socket[] = [];
    for (let wave = 0; wave < 10; wave++) {
      const opened = await Promise.all(
        Array.from({ length: 100 }, () => connect(peerPorts[leaderId - 1]!).catch(() => undefined)),
      );
      for (const c of opened) {
        if (c === undefined) continue;
        sockets.push(c.socket);
        c.socket.write(header);
      }
      peak = Math.max(peak, rssKiB(pid));
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    peak = Math.max(peak, rssKiB(pid));
    for (const s of sockets) s.destroy();
    expect(sockets.length).toBeGreaterThan(0);
    expect(victim.child.exitCode).toBe(null);
    // Before the fix each socket allocated 16 MiB: 1,000 of them, 16 GB.
    expect(peak - before, `RSS ${before} KiB -> peak ${peak} KiB`).toBeLessThan(100 * 1024);
    expect(logLines(victim, "refused peer connection").length).toBeGreaterThan(0);
    await put("after-flood");
  }, 60_000);

  it("ends the process non-zero within a second of a fatal error, closing its WAL and transport", async () => {
    const [peer, api] = await freePorts(2);
    const dir = join(root, "fatal");
    const node = startNode(
      [
        "--id",
        "1",
        "--data-dir",
        dir,
        "--peer-listen",
        `127.0.0.1:${peer}`,
        "--api-listen",
        `127.0.0.1:${api}`,
        "--cluster-id",
        CLUSTER,
      ],
      { [FAIL_STORAGE_ENV]: join(root, "fail-storage-now") },
    );
    nodes.push(node);
    const client = new BlixardClient({
      endpoints: [`http://127.0.0.1:${api}`],
      timeoutMs: 2000,
      retries: 0,
    });
    await until(
      async () => ((await client.status().catch(() => undefined))?.leader === 1 ? true : undefined),
      "the single node to lead",
      60_000,
    );
    await client.put("healthy", "v");
    // From now on writes fail: the next proposal hits the dying disk.
    writeFileSync(join(root, "fail-storage-now"), "");
    const failedAt = performance.now();
    await client.put("doomed", "v").catch(() => undefined);
    const code = await exitWithin(node.exited, 5_000);
    const exitMs = performance.now() - failedAt;
    expect(code, node.output()).toBe(70);
    expect(exitMs, node.output()).toBeLessThan(1000);
    expect(logLines(node, "node exiting after a fatal error").length).toBe(1);
    expect(node.output()).toContain("injected storage failure");
  }, 60_000);
});
