/**
 * Watches a guest's serial console for its readiness line and keeps the last console lines, so a
 * guest that never becomes ready fails with what it printed last.
 *
 * The Blixard guest (`guest/init.sh`) prints `BLIXARD-READY <nonce>` once its init has mounted its
 * file systems, loaded the virtio modules and configured networking. The nonce is fresh per run
 * and passed on the kernel command line (`blixard.nonce=`), so only this run's guest can announce
 * this run's readiness (a line echoed from an older log, or printed by a program in the guest
 * without the nonce, does not count).
 */

/** The readiness line's prefix; the nonce follows after one space. */
export const READY_LINE_PREFIX = "BLIXARD-READY";

/** The kernel command line parameter that carries the nonce to the guest. */
export const NONCE_PARAMETER = "blixard.nonce";

/** Console lines kept for a failure message. */
export const CONSOLE_TAIL_LINES = 8;

/** The longest console line kept, in characters (a line longer is cut; the scan still works). */
const MAX_LINE_CHARS = 512;

/** A terminal control sequence (ESC [ … letter), built from a string so no control char sits in a literal. */
const ESCAPE_SEQUENCE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, "g");

/** See the module comment. */
export class GuestReadyWatcher {
  readonly #expected: string;
  readonly #tail: string[] = [];
  readonly #decoder = new TextDecoder("utf-8");
  #partial = "";
  #ready = false;
  readonly #onReady: () => void;

  /** @param nonce this run's nonce; `onReady` is called once, when its line arrives. */
  constructor(nonce: string, onReady: () => void) {
    this.#expected = `${READY_LINE_PREFIX} ${nonce}`;
    this.#onReady = onReady;
  }

  /** True once the readiness line was seen. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Takes the next bytes of the console. Throws nothing. */
  push(chunk: Uint8Array): void {
    const text = this.#partial + this.#decoder.decode(chunk, { stream: true });
    const lines = text.split("\n");
    this.#partial = (lines.pop() ?? "").slice(-MAX_LINE_CHARS);
    for (const raw of lines) this.#line(raw);
  }

  /** The last console lines (the unfinished one included), oldest first, joined by " | ". */
  tail(): string {
    const lines = this.#partial.trim() === "" ? this.#tail : [...this.#tail, this.#partial.trim()];
    return lines.join(" | ");
  }

  #line(raw: string): void {
    // Terminal escapes and carriage returns from the guest's console are noise here.
    const line = raw.replace(ESCAPE_SEQUENCE, "").replace(/\r/g, "").trim();
    if (line === "") return;
    this.#tail.push(line.slice(0, MAX_LINE_CHARS));
    if (this.#tail.length > CONSOLE_TAIL_LINES) this.#tail.shift();
    if (!this.#ready && line.endsWith(this.#expected)) {
      this.#ready = true;
      this.#onReady();
    }
  }
}
