/**
 * A QMP server for tests: listens on a unix socket, greets like QEMU 7.2 and hands every command
 * it receives to the test, which answers (or not) as the scenario needs.
 */
import { createServer, type Server, type Socket } from "node:net";

/** A command as the client sent it. */
export interface ReceivedCommand {
  readonly execute: string;
  readonly arguments?: Record<string, unknown>;
  readonly id?: unknown;
}

/** One client connection, from the server's side. */
export interface FakeQmpPeer {
  /** Sends one JSON message (a line ending in CRLF, as QEMU does). */
  send(message: unknown): void;
  /** Sends raw text, exactly as given. */
  raw(text: string): void;
  /** Answers `command` with `{return: value}`. */
  reply(command: ReceivedCommand, value?: unknown): void;
  /** Closes the connection. */
  close(): void;
}

/** What the fake server does. */
export interface FakeQmpBehaviour {
  /** The first line sent; null: never greet. Default: a QEMU 7.2 greeting. */
  readonly greeting?: string | null;
  /**
   * Called for every command. Default (and whenever it returns false): answer
   * `qmp_capabilities` with `{}` and ignore anything else.
   */
  readonly onCommand?: (command: ReceivedCommand, peer: FakeQmpPeer) => boolean | void;
}

/** The greeting QEMU 7.2 sends. */
export const QEMU_GREETING = JSON.stringify({
  QMP: {
    version: { qemu: { micro: 22, minor: 2, major: 7 }, package: "fake" },
    capabilities: ["oob"],
  },
});

/** A running fake server. */
export interface FakeQmpServer {
  /** Every command received, in order, over all connections. */
  readonly received: ReceivedCommand[];
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Starts a fake QMP server on the unix socket `path`. */
export async function startFakeQmp(
  path: string,
  behaviour: FakeQmpBehaviour = {},
): Promise<FakeQmpServer> {
  const received: ReceivedCommand[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    const peer: FakeQmpPeer = {
      send: (message) => socket.write(`${JSON.stringify(message)}\r\n`),
      raw: (text) => socket.write(text),
      reply: (command, value = {}) => peer.send({ return: value, id: command.id }),
      close: () => socket.destroy(),
    };
    const greeting = behaviour.greeting === undefined ? QEMU_GREETING : behaviour.greeting;
    if (greeting !== null) socket.write(`${greeting}\r\n`);
    let buffer = "";
    socket.setEncoding("utf8");
    socket.on("data", (text: string) => {
      buffer += text;
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const command = JSON.parse(buffer.slice(0, newline)) as ReceivedCommand;
        buffer = buffer.slice(newline + 1);
        received.push(command);
        const handled = behaviour.onCommand?.(command, peer);
        if (handled !== true && command.execute === "qmp_capabilities") peer.reply(command);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  return {
    received,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
