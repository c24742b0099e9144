/**
 * A task's stdout or stderr, kept up to a byte cap. Everything past the cap is read and dropped
 * (so the child never blocks on a full pipe) and the truncation is recorded.
 */

/** Collects a stream's bytes up to `capBytes`; see {@link decodeUtf8Capped} for the text. */
export class CappedOutput {
  private readonly chunks: Uint8Array[] = [];
  private keptBytes = 0;
  private droppedAny = false;

  /** @param capBytes the most bytes kept (≥ 0). */
  constructor(private readonly capBytes: number) {}

  /** Takes the next chunk of the stream; the part past the cap is dropped. */
  push(chunk: Uint8Array): void {
    const room = this.capBytes - this.keptBytes;
    if (chunk.length > room) this.droppedAny = true;
    if (room <= 0) return;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.keptBytes += kept.length;
  }

  /** Whether any byte was dropped. */
  get truncated(): boolean {
    return this.droppedAny;
  }

  /** The kept bytes as UTF-8 text of at most `capBytes` bytes. */
  text(): string {
    return decodeUtf8Capped(concat(this.chunks, this.keptBytes), this.capBytes, this.droppedAny);
  }
}

/**
 * Decodes `bytes` as UTF-8 into a string whose UTF-8 encoding is at most `capBytes` long. When
 * `cutShort` (the bytes are a prefix of a longer output), a multi-byte character cut by the cap is
 * dropped rather than shown as U+FFFD. Invalid bytes become U+FFFD (three bytes each), so the
 * decoded text is cut again at a character boundary to keep the byte bound.
 */
export function decodeUtf8Capped(bytes: Uint8Array, capBytes: number, cutShort: boolean): string {
  const whole = cutShort ? bytes.subarray(0, completeUtf8Length(bytes)) : bytes;
  const text = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(whole);
  // Each UTF-16 unit encodes to at most 3 bytes: short strings need no check.
  if (text.length * 3 <= capBytes) return text;
  const { read } = new TextEncoder().encodeInto(text, new Uint8Array(capBytes));
  return text.slice(0, read);
}

/**
 * The length of the longest prefix of `bytes` that does not end inside a multi-byte UTF-8
 * sequence. Only the last sequence is looked at: invalid bytes elsewhere are the decoder's job.
 */
export function completeUtf8Length(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(4, n); back++) {
    const byte = bytes[n - back] as number;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: keep looking for the lead
    const needed =
      (byte & 0xe0) === 0xc0 ? 2 : (byte & 0xf0) === 0xe0 ? 3 : (byte & 0xf8) === 0xf0 ? 4 : 1;
    return back < needed ? n - back : n;
  }
  return n;
}

function concat(chunks: readonly Uint8Array[], totalBytes: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(totalBytes);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * `text` if its UTF-8 encoding fits in `maxBytes`, else its longest prefix that fits together with
 * a trailing "…" (so a reader sees it was cut). Used for error messages, which the model bounds.
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  const encoder = new TextEncoder();
  if (text.length * 3 <= maxBytes || encoder.encode(text).length <= maxBytes) return text;
  const marker = "…"; // 3 bytes
  const { read } = encoder.encodeInto(text, new Uint8Array(Math.max(0, maxBytes - 3)));
  return `${text.slice(0, read)}${marker}`;
}

/** The last `capBytes` bytes of a stream, to quote in an error message. */
export class OutputTail {
  private bytes = new Uint8Array(0);

  /** @param capBytes the most bytes kept (≥ 1). */
  constructor(private readonly capBytes: number) {}

  /** Takes the next chunk; older bytes past the cap are forgotten. */
  push(chunk: Uint8Array): void {
    if (chunk.length >= this.capBytes) {
      this.bytes = chunk.slice(chunk.length - this.capBytes);
      return;
    }
    const keep = Math.min(this.bytes.length, this.capBytes - chunk.length);
    const next = new Uint8Array(keep + chunk.length);
    next.set(this.bytes.subarray(this.bytes.length - keep), 0);
    next.set(chunk, keep);
    this.bytes = next;
  }

  /** The kept bytes as text, trimmed; a character cut at the start becomes U+FFFD. */
  text(): string {
    return new TextDecoder("utf-8", { fatal: false }).decode(this.bytes).trim();
  }
}
