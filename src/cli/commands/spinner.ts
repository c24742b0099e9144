/**
 * A one-line progress spinner on stderr while something slow runs. Only on a terminal: piped
 * output stays clean for scripts.
 */

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
/** How often the spinner turns. */
const FRAME_INTERVAL_MS = 80;

/** A spinner that draws `text` behind a turning frame until stopped. */
export class Spinner {
  readonly #stream: NodeJS.WriteStream;
  readonly #enabled: boolean;
  #text = "";
  #frame = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** @param stream where to draw; nothing is drawn unless it is a TTY. Default stderr. */
  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.#stream = stream;
    this.#enabled = stream.isTTY === true;
  }

  /** Shows `text` (starting the spinner on first use). Throws nothing. */
  update(text: string): void {
    this.#text = text;
    if (!this.#enabled) return;
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#draw(), FRAME_INTERVAL_MS);
      this.#timer.unref();
    }
    this.#draw();
  }

  /** Stops and erases the spinner line. Throws nothing. */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#stream.write("\r\x1b[K");
  }

  #draw(): void {
    const frame = FRAMES[this.#frame++ % FRAMES.length] ?? "";
    const width = Math.max(10, (this.#stream.columns ?? 80) - 3);
    this.#stream.write(`\r\x1b[K${frame} ${this.#text.slice(0, width)}`);
  }
}
