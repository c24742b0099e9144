/**
 * The qemu driver's health probes (see `health-check.ts` for the loop): a TCP connection to a
 * guest port through QEMU's user-mode forward, or a command through the guest agent.
 *
 * A TCP probe cannot stop at "connected": slirp accepts the host side of a forward at once and
 * only then connects to the guest, closing the host side if the guest refuses. So the probe holds
 * the connection: it passes when the guest sends a byte, or when the connection is still open
 * after {@link tcpHoldMs}; it fails when the connection is refused, reset or closed before that.
 * (A guest service that accepts and closes at once without a word counts as failing.)
 */
import { createConnection } from "node:net";
import type { Clock } from "../../common/clock.js";
import type { GuestAgentClient } from "./guest-agent-client.js";
import type { HealthProbe } from "./health-check.js";

/** The longest a TCP probe holds an open, silent connection before it counts as a pass. */
export const TCP_PROBE_HOLD_MS = 1000;

/** How long a TCP probe with `timeoutMs` holds a silent connection: half its time, at most 1 s. */
export function tcpHoldMs(timeoutMs: number): number {
  return Math.max(1, Math.min(TCP_PROBE_HOLD_MS, Math.floor(timeoutMs / 2)));
}

/** Probes guest port `guestPort`, forwarded from `127.0.0.1:hostPort`. Throws nothing itself. */
export function tcpProbe(options: {
  readonly clock: Clock;
  readonly hostPort: number;
  readonly guestPort: number;
  readonly timeoutMs: number;
}): HealthProbe {
  const { clock, hostPort, guestPort } = options;
  const holdMs = tcpHoldMs(options.timeoutMs);
  return (signal) =>
    new Promise<void>((resolve, reject) => {
      const socket = createConnection({ host: "127.0.0.1", port: hostPort });
      let hold: { cancel(): void } | undefined;
      const end = (error?: Error): void => {
        hold?.cancel();
        signal.removeEventListener("abort", onAbort);
        socket.destroy();
        if (error === undefined) resolve();
        else reject(error);
      };
      const onAbort = (): void => end(new Error(`tcp guest port ${guestPort}: given up`));
      signal.addEventListener("abort", onAbort, { once: true });
      socket.once("connect", () => {
        hold = clock.setTimer(holdMs, () => end());
      });
      socket.once("data", () => end());
      socket.once("error", (error: NodeJS.ErrnoException) =>
        end(new Error(`tcp guest port ${guestPort}: ${error.code ?? error.message}`)),
      );
      socket.once("end", () =>
        end(
          new Error(
            `tcp guest port ${guestPort}: the connection was closed at once (nothing listens there?)`,
          ),
        ),
      );
    });
}

/** Probes by running `command` through the guest agent: passes on exit code 0. */
export function commandProbe(options: {
  readonly agent: () => GuestAgentClient | undefined;
  readonly command: string;
  readonly timeoutMs: number;
}): HealthProbe {
  return async (signal) => {
    const agent = options.agent();
    if (agent === undefined) throw new Error("the guest agent is not connected");
    const result = await agent.exec({
      command: options.command,
      timeoutMs: options.timeoutMs,
      signal,
    });
    if (result.exitCode !== 0) {
      const tail = result.output.trim().split("\n").at(-1)?.slice(0, 200) ?? "";
      throw new Error(`command exited ${result.exitCode}${tail === "" ? "" : `: ${tail}`}`);
    }
  };
}

/**
 * The host ports of the forwards on 127.0.0.1, by guest port, from QEMU's `info usernet` (lines
 * like `TCP[HOST_FORWARD]  3  127.0.0.1 45463  10.0.2.15  80  0  0`). Throws nothing.
 */
export function localForwardPorts(usernet: string): Map<number, number> {
  const ports = new Map<number, number>();
  const line = /TCP\[HOST_FORWARD\]\s+-?\d+\s+127\.0\.0\.1\s+(\d+)\s+\S+\s+(\d+)/g;
  for (const match of usernet.matchAll(line)) {
    ports.set(Number(match[2]), Number(match[1]));
  }
  return ports;
}
