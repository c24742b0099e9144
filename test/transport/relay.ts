/**
 * A relay in front of a node's peer port for transport tests: TCP, and with `udp` also UDP on the
 * same port number (as a node listens for both). Its TCP side can be stalled: it stops reading
 * either side, so what is written through it waits in the kernel's buffers, as on a connection in
 * retransmission backoff. Datagrams still pass, and are kept.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, createServer, type Server, type Socket } from "node:net";

/** A running relay. */
export interface Relay {
  readonly port: number;
  /** Stops the TCP side (connections made later start stalled). */
  stall(): void;
  /**
   * Cuts the TCP side for good: its connections are destroyed and new ones refused, while
   * datagrams still pass.
   */
  cutTcp(): void;
  /** The datagrams passed so far (with `udp`). */
  readonly datagrams: Buffer[];
  close(): void;
}

/** Starts a relay to `127.0.0.1:port`. */
export async function startRelay(port: number, options: { udp?: boolean } = {}): Promise<Relay> {
  const pairs: [Socket, Socket][] = [];
  const sockets: Socket[] = [];
  let stalled = false;
  let cut = false;
  const tcp: Server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: "127.0.0.1", port });
    sockets.push(client, upstream);
    client.on("error", () => undefined);
    upstream.on("error", () => undefined);
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.push([client, upstream]);
    if (stalled) {
      client.pause();
      upstream.pause();
    }
  });
  await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", () => resolve()));
  const address = tcp.address();
  if (address === null || typeof address === "string") throw new Error("no relay address");
  const datagrams: Buffer[] = [];
  let udp: UdpSocket | undefined;
  if (options.udp === true) {
    const socket = createSocket("udp4");
    socket.on("message", (datagram) => {
      datagrams.push(datagram);
      socket.send(datagram, port, "127.0.0.1");
    });
    await new Promise<void>((resolve) => socket.bind(address.port, "127.0.0.1", () => resolve()));
    udp = socket;
  }
  return {
    port: address.port,
    datagrams,
    stall: () => {
      stalled = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    cutTcp: () => {
      cut = true;
      tcp.close();
      for (const s of sockets) s.destroy();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      tcp.close();
      udp?.close();
    },
  };
}
