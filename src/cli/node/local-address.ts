/**
 * The address of this machine that another host reaches it at: the source address the kernel
 * picks for packets toward that host. An agent-only worker has no listen address of its own, yet
 * a VM live-migrating to it needs one the source node can reach; the address it uses toward its
 * servers is the best guess (`agent start --advertise-host` says otherwise).
 *
 * Found by connecting a UDP socket, which sends nothing: the kernel only chooses the route and
 * the source address.
 */
import { createSocket } from "node:dgram";
import { lookup } from "node:dns/promises";

/**
 * The local address toward `url`'s host (a name is resolved first, as a connection would).
 * @throws the resolver's error for a name that does not resolve; the socket's, or "no route",
 *   when the kernel has no route there.
 */
export async function localAddressToward(url: URL): Promise<string> {
  const target = await lookup(url.hostname.replace(/^\[(.*)\]$/, "$1"));
  const socket = createSocket(target.family === 6 ? "udp6" : "udp4");
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      socket.close();
      outcome();
    };
    socket.once("error", (error) => settle(() => reject(error)));
    // The port only has to be valid: nothing is sent to it.
    socket.connect(Number(url.port) || 443, target.address, () => {
      const { address } = socket.address();
      if (address === "0.0.0.0" || address === "::") {
        settle(() => reject(new Error(`no route toward ${target.address}`)));
      } else {
        settle(() => resolve(address));
      }
    });
  });
}
