/**
 * Rate-limited warnings about refused peers. A hostile or broken peer can make this node refuse
 * it thousands of times a second; the log keeps at most one line per remote address and kind of
 * refusal per interval, and that line says how many were suppressed since the last one. Counters
 * of every refusal are kept for metrics. Private to src/transport.
 */
import type { Clock } from "../common/clock.js";
import type { Logger } from "../common/logger.js";

/** What was refused: a whole connection, or messages on an accepted one. */
export type RefusalKind = "connection" | "message";

/** Counters of refusals since the transport started (for metrics). */
export interface RefusalStats {
  /** Connections refused or closed for breaking a rule (hello, identity, framing, limits). */
  connectionsRefused: number;
  /** Peer messages dropped because a field was out of range or inconsistent. */
  messagesRejected: number;
}

/** Remote addresses remembered at most; past it the oldest is forgotten (bounded memory). */
const MAX_TRACKED_REMOTES = 1024;

interface Window {
  lastLoggedMs: number;
  suppressed: number;
}

/** See the module comment. */
export class RefusalLog {
  readonly stats: RefusalStats = { connectionsRefused: 0, messagesRejected: 0 };
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  /**
   * Counts a refusal and logs it unless one of the same kind and reason from the same host was logged
   * within the interval. `remoteHost` is the address without its port (a peer redials from a
   * new port each time).
   */
  refused(
    kind: RefusalKind,
    remoteHost: string,
    message: string,
    fields: Record<string, unknown>,
    count = 1,
  ): void {
    if (kind === "connection") this.stats.connectionsRefused += count;
    else this.stats.messagesRejected += count;
    // One line per reason too: a new reason from the same host (another claimed id, another
    // cluster) is news; the same one repeated is the flood this bounds.
    const reason = typeof fields["reason"] === "string" ? fields["reason"] : "";
    const key = `${kind} ${remoteHost} ${reason}`;
    const now = this.clock.now();
    const window = this.windows.get(key);
    if (window !== undefined && now - window.lastLoggedMs < this.intervalMs) {
      window.suppressed += count;
      return;
    }
    const suppressed = window?.suppressed ?? 0;
    this.windows.delete(key);
    if (this.windows.size >= MAX_TRACKED_REMOTES) {
      const oldest = this.windows.keys().next().value;
      if (oldest !== undefined) this.windows.delete(oldest);
    }
    this.windows.set(key, { lastLoggedMs: now, suppressed: 0 });
    this.logger.warn(message, {
      ...fields,
      ...(suppressed === 0 ? {} : { suppressedSinceLastLine: suppressed }),
    });
  }
}
