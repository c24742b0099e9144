import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CancelledError,
  TimeoutError,
  TooLargeError,
  UnavailableError,
} from "../../../src/common/errors.js";
import {
  QmpClient,
  QmpCommandError,
  type QmpEvent,
} from "../../../src/orchestrator/drivers/qmp.js";
import { startFakeQmp, type FakeQmpBehaviour, type FakeQmpServer } from "./fake-qmp-server.js";
import { makeTempDir, realClock } from "./helpers.js";

let temp: { dir: string; remove: () => void };
let socketCount = 0;
const cleanups: (() => Promise<void> | void)[] = [];
beforeAll(() => {
  temp = makeTempDir("qmp");
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => temp.remove());

async function serve(
  behaviour: FakeQmpBehaviour = {},
): Promise<{ path: string; server: FakeQmpServer }> {
  const path = join(temp.dir, `s${socketCount++}.sock`);
  const server = await startFakeQmp(path, behaviour);
  cleanups.push(() => server.close());
  return { path, server };
}

async function connect(path: string, timeoutMs = 2_000): Promise<QmpClient> {
  const client = await QmpClient.connect(path, { clock: realClock, timeoutMs });
  cleanups.push(() => client.close());
  return client;
}

describe("QmpClient: the protocol", () => {
  it("reads the greeting, negotiates capabilities first, and runs commands by id", async () => {
    const { path, server } = await serve({
      onCommand: (command, peer) => {
        if (command.execute !== "query-status") return false;
        peer.reply(command, { status: "running", running: true });
        return true;
      },
    });
    const client = await connect(path);
    expect(client.greeting.capabilities).toEqual(["oob"]);
    expect(client.greeting.version).toMatchObject({ qemu: { major: 7, minor: 2 } });
    expect(await client.execute("query-status")).toEqual({ status: "running", running: true });
    expect(server.received.map((c) => c.execute)).toEqual(["qmp_capabilities", "query-status"]);
    // Every command carries a distinct id.
    expect(new Set(server.received.map((c) => c.id)).size).toBe(2);
  });

  it("sends arguments and matches replies that arrive out of order to their commands", async () => {
    const held: { id: unknown; value: unknown }[] = [];
    const { path } = await serve({
      onCommand: (command, peer) => {
        if (command.execute !== "echo") return false;
        held.push({ id: command.id, value: command.arguments?.["value"] });
        if (held.length === 3) {
          for (const { id, value } of held.reverse()) peer.send({ return: value, id });
        }
        return true;
      },
    });
    const client = await connect(path);
    const answers = await Promise.all(
      ["a", "b", "c"].map((value) => client.execute("echo", { value })),
    );
    expect(answers).toEqual(["a", "b", "c"]);
  });

  it("delivers events between replies, and handles messages split or joined across reads", async () => {
    const { path } = await serve({
      onCommand: (command, peer) => {
        if (command.execute !== "system_powerdown") return false;
        // One event split over two writes, then a reply and a second event in one write.
        const event = JSON.stringify({
          timestamp: { seconds: 1, microseconds: 5 },
          event: "POWERDOWN",
        });
        peer.raw(event.slice(0, 10));
        setImmediate(() => {
          peer.raw(
            `${event.slice(10)}\r\n${JSON.stringify({ return: {}, id: command.id })}\r\n` +
              `${JSON.stringify({ event: "SHUTDOWN", data: { guest: true, reason: "guest-shutdown" } })}\r\n`,
          );
        });
        return true;
      },
    });
    const client = await connect(path);
    const events: QmpEvent[] = [];
    client.onEvent((e) => events.push(e));
    const shutdown = new Promise<void>((resolve) =>
      client.onEvent((e) => e.event === "SHUTDOWN" && resolve()),
    );
    await client.execute("system_powerdown");
    await shutdown;
    expect(events).toEqual([
      { event: "POWERDOWN", data: {}, timestampMicros: 1_000_005 },
      { event: "SHUTDOWN", data: { guest: true, reason: "guest-shutdown" }, timestampMicros: null },
    ]);
  });

  it("rejects a command QEMU refuses with its error class and description", async () => {
    const { path } = await serve({
      onCommand: (command, peer) => {
        if (command.execute !== "no-such") return false;
        peer.send({
          error: { class: "CommandNotFound", desc: "The command no-such has not been found" },
          id: command.id,
        });
        return true;
      },
    });
    const client = await connect(path);
    const error = await client.execute("no-such").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QmpCommandError);
    expect(error).toMatchObject({
      code: "CONFLICT",
      errorClass: "CommandNotFound",
      description: "The command no-such has not been found",
    });
    // The connection stays usable.
    expect(client.isOpen).toBe(true);
  });

  it("fails the connection when qmp_capabilities is refused", async () => {
    const { path } = await serve({
      onCommand: (command, peer) => {
        peer.send({ error: { class: "GenericError", desc: "nope" }, id: command.id });
        return true;
      },
    });
    await expect(QmpClient.connect(path, { clock: realClock })).rejects.toBeInstanceOf(
      QmpCommandError,
    );
  });
});

describe("QmpClient: a server that misbehaves", () => {
  it("times out a command that is never answered and keeps the connection", async () => {
    const { path } = await serve({
      onCommand: (command, peer) => {
        if (command.execute === "ping") peer.reply(command, "pong");
        return command.execute === "ping" || command.execute === "ignored";
      },
    });
    const client = await connect(path);
    const error = await client
      .execute("ignored", undefined, { timeoutMs: 100 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toBe("QEMU did not answer ignored within 100 ms");
    expect(await client.execute("ping")).toBe("pong");
  });

  it("times out a connection whose server never greets", async () => {
    const { path } = await serve({ greeting: null });
    const error = await QmpClient.connect(path, { clock: realClock, timeoutMs: 150 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toMatch(/did not greet and negotiate within 150 ms/);
  });

  it("closes the connection on malformed JSON and fails what was in flight", async () => {
    const { path } = await serve({
      onCommand: (command, peer) => {
        if (command.execute !== "query-status") return false;
        peer.raw('{"return": {"status": \r\n');
        return true;
      },
    });
    const client = await connect(path);
    const error = await client.execute("query-status").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toMatch(/broke the protocol \(malformed JSON/);
    expect(client.isOpen).toBe(false);
    expect(await client.closed).toBe(error);
    await expect(client.execute("query-status")).rejects.toThrow(/cannot send query-status/);
  });

  it("refuses a server whose first message is not a greeting", async () => {
    const { path } = await serve({ greeting: JSON.stringify({ return: {} }) });
    const error = await QmpClient.connect(path, { clock: realClock }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toMatch(/no greeting first/);
  });

  it("refuses a greeting line that is not JSON", async () => {
    const { path } = await serve({ greeting: "Welcome to QEMU!" });
    await expect(QmpClient.connect(path, { clock: realClock })).rejects.toThrow(/malformed JSON/);
  });

  it("refuses a message larger than the bound", async () => {
    const { path } = await serve({
      onCommand: (command, peer) => {
        if (command.execute !== "big") return false;
        peer.raw(`{"return": "${"x".repeat(5000)}`);
        return true;
      },
    });
    const client = await QmpClient.connect(path, { clock: realClock, maxMessageBytes: 1000 });
    cleanups.push(() => client.close());
    const error = await client.execute("big").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TooLargeError);
    expect(client.isOpen).toBe(false);
  });

  it("fails a command in flight when the server closes the connection", async () => {
    const { path } = await serve({
      onCommand: (command, peer) => {
        if (command.execute !== "quit") return false;
        peer.close();
        return true;
      },
    });
    const client = await connect(path);
    const error = await client.execute("quit").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toMatch(/closed by QEMU|failed/);
    expect(client.isOpen).toBe(false);
  });
});

describe("QmpClient: connecting", () => {
  it("reports a missing socket as UNAVAILABLE with ENOENT as the cause", async () => {
    const error = await QmpClient.connect(join(temp.dir, "missing.sock"), {
      clock: realClock,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect(((error as Error).cause as NodeJS.ErrnoException).code).toBe("ENOENT");
  });

  it("reports a path nobody listens on as UNAVAILABLE with ECONNREFUSED", async () => {
    // What a QEMU killed with SIGKILL leaves: a file at the socket's path, no listener.
    const path = join(temp.dir, "stale.sock");
    writeFileSync(path, "");
    const error = await QmpClient.connect(path, { clock: realClock }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect(((error as Error).cause as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
  });

  it("is cancelled by its AbortSignal", async () => {
    const { path } = await serve({ greeting: null });
    const controller = new AbortController();
    const connecting = QmpClient.connect(path, { clock: realClock, signal: controller.signal });
    controller.abort();
    await expect(connecting).rejects.toBeInstanceOf(CancelledError);
    const already = QmpClient.connect(path, { clock: realClock, signal: controller.signal });
    await expect(already).rejects.toBeInstanceOf(CancelledError);
  });
});
