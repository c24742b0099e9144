/**
 * The guest agent channel without a guest: the line protocol's reader on crafted input (framing,
 * truncation, stale and malformed answers, noise), and the client against a fake agent on a unix
 * socket that answers as `guest/init.sh` does (or not at all), on a manual clock.
 */
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { GuestAgentClient } from "../../../src/orchestrator/drivers/guest-agent-client.js";
import {
  execRequestLine,
  GuestAgentReader,
  MAX_GUEST_EXEC_OUTPUT_BYTES,
  type GuestExecResult,
} from "../../../src/orchestrator/drivers/guest-agent-protocol.js";
import { makeTempDir, ManualClock, waitFor } from "./helpers.js";

/** The guest's answer lines for `output`, as busybox `base64` wraps them (76 characters). */
function answer(id: number, exitCode: number, output: Buffer, size = output.length): string {
  const base64 = output.toString("base64").match(/.{1,76}/g) ?? [];
  return [`BEGIN ${id}`, ...base64, `END ${id} ${exitCode} ${size}`, ""].join("\n");
}

function read(text: string | Buffer): [number, GuestExecResult][] {
  const answers: [number, GuestExecResult][] = [];
  const reader = new GuestAgentReader((id, result) => answers.push([id, result]));
  const bytes = typeof text === "string" ? Buffer.from(text) : text;
  // Byte by byte: framing must not depend on how the stream is cut.
  for (const byte of bytes) reader.push(Uint8Array.of(byte));
  return answers;
}

describe("the guest agent protocol", () => {
  it("encodes a request with the command in base64 on one line", () => {
    const line = execRequestLine(7, "echo 'a b'\nexit 3", 30);
    expect(line).toBe(`EXEC 7 30 ${Buffer.from("echo 'a b'\nexit 3").toString("base64")}\n`);
  });

  it("reads an answer's exit code and output, whatever bytes and lines it holds", () => {
    const output = Buffer.from("line 1\nwörld 😀\r\nEND 1 0 3\n");
    expect(read(`boot noise\n${answer(1, 42, output)}`)).toEqual([
      [1, { exitCode: 42, output: output.toString("utf8"), truncated: false }],
    ]);
    expect(read(answer(2, 0, Buffer.alloc(0)))).toEqual([
      [2, { exitCode: 0, output: "", truncated: false }],
    ]);
  });

  it("flags output the guest cut at the limit", () => {
    const kept = Buffer.alloc(MAX_GUEST_EXEC_OUTPUT_BYTES, "x");
    const [[, result]] = read(answer(3, 0, kept, MAX_GUEST_EXEC_OUTPUT_BYTES + 10)) as [
      [number, GuestExecResult],
    ];
    expect(result.truncated).toBe(true);
    expect(result.output).toHaveLength(MAX_GUEST_EXEC_OUTPUT_BYTES);
  });

  it("drops an answer whose END names another id, one too large, and a malformed END", () => {
    const mismatched = `BEGIN 4\naGk=\nEND 5 0 2\n`;
    const tooLarge = answer(6, 0, Buffer.alloc(MAX_GUEST_EXEC_OUTPUT_BYTES * 2, "y"));
    const malformed = `BEGIN 7\naGk=\nEND 7 zero 2\n`;
    const good = answer(8, 1, Buffer.from("ok"));
    expect(read(mismatched + tooLarge + malformed + good).map(([id]) => id)).toEqual([8]);
  });

  it("ignores a line too long to be the protocol's and keeps reading", () => {
    const noise = `${"z".repeat(5000)}\n`;
    expect(read(noise + answer(9, 0, Buffer.from("after"))).map(([, r]) => r.output)).toEqual([
      "after",
    ]);
  });
});

/** A fake agent: answers each EXEC by `respond` (or never, when it returns undefined). */
async function fakeAgent(
  path: string,
  respond: (id: number, command: string, timeoutSeconds: number) => string | undefined,
): Promise<{ server: Server; requests: string[]; sockets: Socket[] }> {
  const requests: string[] = [];
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    let buffer = "";
    socket.on("data", (chunk) => {
      buffer += chunk.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        requests.push(line);
        const [, id, seconds, payload] = line.split(" ");
        const command = Buffer.from(payload ?? "", "base64").toString();
        const reply = respond(Number(id), command, Number(seconds));
        if (reply !== undefined) socket.write(reply);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { server, requests, sockets };
}

describe("GuestAgentClient", () => {
  const temp = makeTempDir("agent");
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });
  afterAll(() => temp.remove());

  async function connect(respond: Parameters<typeof fakeAgent>[1]): Promise<{
    client: GuestAgentClient;
    clock: ManualClock;
    agent: Awaited<ReturnType<typeof fakeAgent>>;
  }> {
    const path = join(
      temp.dir,
      `agent-${cleanups.length}-${Math.random().toString(36).slice(2)}.sock`,
    );
    const agent = await fakeAgent(path, respond);
    const clock = new ManualClock();
    const client = await GuestAgentClient.connect(path, clock);
    cleanups.push(() => {
      client.close();
      for (const socket of agent.sockets) socket.destroy();
      agent.server.close();
    });
    return { client, clock, agent };
  }

  it("runs commands one at a time, in order, each answered by its id", async () => {
    const { client, agent } = await connect((id, command) =>
      answer(id, command.length, Buffer.from(`ran ${command}`)),
    );
    const [first, second] = await Promise.all([
      client.exec({ command: "a", timeoutMs: 1000 }),
      client.exec({ command: "bb", timeoutMs: 2500 }),
    ]);
    expect(first).toEqual({ exitCode: 1, output: "ran a", truncated: false });
    expect(second).toEqual({ exitCode: 2, output: "ran bb", truncated: false });
    // The timeout goes to the guest in whole seconds, rounded up.
    expect(agent.requests.map((line) => line.split(" ").slice(0, 3).join(" "))).toEqual([
      "EXEC 1 1",
      "EXEC 2 3",
    ]);
  });

  it("times out when the agent does not answer, and drops that answer if it comes later", async () => {
    const late: number[] = [];
    const { client, clock, agent } = await connect((id) => {
      if (id === 1) {
        late.push(id);
        return undefined;
      }
      return answer(id, 0, Buffer.from("second"));
    });
    const first = client.exec({ command: "sleep 100", timeoutMs: 1000 });
    await waitFor(() => agent.requests.length === 1, "the first request");
    clock.advance(1000 + 3000);
    await expect(first).rejects.toMatchObject({ code: "TIMEOUT" });
    // The first command's answer arrives after the client gave up: it must not answer the second.
    agent.sockets[0]?.write(answer(1, 143, Buffer.from("stale")));
    await expect(client.exec({ command: "x", timeoutMs: 1000 })).resolves.toMatchObject({
      output: "second",
    });
  });

  it("fails what waits with UNAVAILABLE when the channel closes, and refuses bad requests", async () => {
    const { client, agent } = await connect(() => undefined);
    const waiting = client.exec({ command: "true", timeoutMs: 1000 });
    await waitFor(() => agent.requests.length === 1, "the request");
    agent.sockets[0]?.destroy();
    await expect(waiting).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await expect(client.exec({ command: "true", timeoutMs: 1000 })).rejects.toMatchObject({
      code: "UNAVAILABLE",
    });
    expect(() => client.exec({ command: "", timeoutMs: 1000 })).toThrow(/1 to 16384 bytes/);
    expect(() => client.exec({ command: "true", timeoutMs: 0 })).toThrow(/timeout/);
  });

  it("says UNAVAILABLE when nothing listens on the socket", async () => {
    await expect(
      GuestAgentClient.connect(join(temp.dir, "missing.sock"), new ManualClock()),
    ).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });
});
