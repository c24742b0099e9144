/**
 * The SDK's automatic client session (Raft thesis §6.3): a random client id per session,
 * sequence numbers handed out per write, the same sequence on every retry of that write, and
 * `ackedBelow` as the lowest sequence still awaiting its reply.
 *
 * The state machine refuses a sequence above 1 for a session it does not know, so writes wait
 * until the opening write (sequence 1) has succeeded. If the opening write fails, or a node
 * reports the session expired, the session is abandoned and the next write opens a fresh one
 * under a new id: never reusing a sequence for a different command.
 */

/** The session fields of one write. */
export interface SessionTicket {
  readonly clientId: string;
  readonly sequence: number;
  /** The lowest sequence of this session still awaiting a reply, at the time of sending. */
  ackedBelow(): number;
}

/** One client's session state. */
export class ClientSessionState {
  #clientId: string;
  #nextSequence = 1;
  #opened = false;
  /** Settles when the opening write has finished (either way). */
  #opening: Promise<void> | undefined;
  #inflight = new Set<number>();
  readonly #newClientId: () => string;

  /** @param newClientId makes a fresh, unique client id (a random UUID). */
  constructor(newClientId: () => string) {
    this.#newClientId = newClientId;
    this.#clientId = newClientId();
  }

  /** The current session's client id. */
  get clientId(): string {
    return this.#clientId;
  }

  /**
   * Reserves the next sequence, waiting for the session to open first if needed. Call
   * {@link finish} with the ticket once the write has its final outcome.
   */
  async begin(): Promise<SessionTicket> {
    while (!this.#opened && this.#opening !== undefined) await this.#opening;
    const clientId = this.#clientId;
    const sequence = this.#nextSequence++;
    if (!this.#opened) {
      let done!: () => void;
      this.#opening = new Promise<void>((resolve) => (done = resolve));
      this.#openingDone = done;
    }
    this.#inflight.add(sequence);
    const inflight = this.#inflight;
    return {
      clientId,
      sequence,
      ackedBelow: () => Math.min(sequence, ...inflight),
    };
  }

  #openingDone: (() => void) | undefined;

  /**
   * Records a write's final outcome. `abandon` drops the session (it may be expired, or its
   * opening write failed) so the next write opens a new one.
   */
  finish(
    ticket: SessionTicket,
    outcome: { readonly succeeded: boolean; readonly abandon: boolean },
  ): void {
    if (ticket.clientId !== this.#clientId) return;
    this.#inflight.delete(ticket.sequence);
    const opening = !this.#opened && ticket.sequence === 1;
    if (opening && outcome.succeeded) this.#opened = true;
    if (outcome.abandon || (opening && !outcome.succeeded)) this.#rotate();
    if (opening) {
      this.#opening = undefined;
      this.#openingDone?.();
      this.#openingDone = undefined;
    }
  }

  #rotate(): void {
    this.#clientId = this.#newClientId();
    this.#nextSequence = 1;
    this.#opened = false;
    this.#inflight = new Set();
  }
}
