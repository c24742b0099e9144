import { TooLargeError } from "../common/errors.js";
import { FRAME_HEADER_BYTES } from "./codec.js";

/**
 * A body is first given at most this many bytes, then grows (doubling) as its bytes arrive: a
 * length header is a promise, not a fact, and a peer that announces 16 MiB and sends nothing
 * must cost nothing.
 */
export const INITIAL_BODY_BYTES = 64 * 1024;

/**
 * Splits a byte stream into frame bodies (4-byte big-endian length, then the body). A frame
 * that fits inside one chunk is returned as a view without any copy; one that spans chunks is
 * copied into a buffer that grows with the bytes received (never the declared length up front),
 * so memory held for an incomplete frame is at most about twice the bytes actually received.
 */
export class FrameReader {
  /**
   * Bodies larger than this are refused. Settable: a connection raises it once the peer is
   * known (before the hello only a small frame is allowed); it applies from the next header.
   */
  maxFrameSizeBytes: number;
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  /** The body being filled (its capacity may still be below bodyLength), once its header is known. */
  private body: Uint8Array | undefined;
  private bodyLength = 0;
  private bodyFilled = 0;

  /** @param maxFrameSizeBytes bodies larger than this are refused. */
  constructor(maxFrameSizeBytes: number) {
    this.maxFrameSizeBytes = maxFrameSizeBytes;
  }

  /**
   * Consumes `chunk` and returns the frame bodies it completes, in order.
   * @throws TooLargeError when a frame's declared length exceeds the limit; the stream is then
   *   unusable (its framing is lost) and must be closed.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const bodies: Uint8Array[] = [];
    this.pushEach(chunk, (body) => {
      bodies.push(body);
      return true;
    });
    return bodies;
  }

  /**
   * Consumes `chunk`, calling `onBody` with each body as soon as it completes, so that what a
   * body changes (a raised {@link maxFrameSizeBytes}) applies to the next header. Stops, leaving
   * the rest of the chunk unread, when `onBody` returns false (the stream is being closed).
   * @throws TooLargeError when a frame's declared length exceeds the limit; the stream is then
   *   unusable (its framing is lost) and must be closed. Nothing is allocated for such a frame.
   */
  pushEach(chunk: Uint8Array, onBody: (body: Uint8Array) => boolean): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.body === undefined) {
        // Fast path: a whole header and body inside the chunk, and nothing buffered.
        if (this.headerFilled === 0 && chunk.length - offset >= FRAME_HEADER_BYTES) {
          const length = readLength(chunk, offset);
          this.checkLength(length);
          if (chunk.length - offset - FRAME_HEADER_BYTES >= length) {
            const start = offset + FRAME_HEADER_BYTES;
            offset = start + length;
            if (!onBody(chunk.subarray(start, start + length))) return;
            continue;
          }
          this.startBody(length);
          offset += FRAME_HEADER_BYTES;
          continue;
        }
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, chunk.length - offset);
        this.header.set(chunk.subarray(offset, offset + take), this.headerFilled);
        this.headerFilled += take;
        offset += take;
        if (this.headerFilled < FRAME_HEADER_BYTES) break;
        const length = readLength(this.header, 0);
        this.checkLength(length);
        this.startBody(length);
        if (length === 0 && !this.finishBody(onBody)) return;
        continue;
      }
      const take = Math.min(this.bodyLength - this.bodyFilled, chunk.length - offset);
      this.reserve(this.bodyFilled + take);
      this.body.set(chunk.subarray(offset, offset + take), this.bodyFilled);
      this.bodyFilled += take;
      offset += take;
      if (this.bodyFilled === this.bodyLength && !this.finishBody(onBody)) return;
    }
  }

  /** Bytes received and held for an incomplete frame. */
  get bufferedBytes(): number {
    return this.headerFilled + (this.body === undefined ? 0 : this.bodyFilled);
  }

  /** Bytes allocated for an incomplete frame (at most about twice {@link bufferedBytes}). */
  get allocatedBytes(): number {
    return FRAME_HEADER_BYTES + (this.body === undefined ? 0 : this.body.length);
  }

  private checkLength(length: number): void {
    if (length > this.maxFrameSizeBytes) {
      throw new TooLargeError(
        `frame of ${length} bytes exceeds the limit of ${this.maxFrameSizeBytes} bytes`,
      );
    }
  }

  private startBody(length: number): void {
    this.headerFilled = 0;
    this.body = new Uint8Array(Math.min(length, INITIAL_BODY_BYTES));
    this.bodyLength = length;
    this.bodyFilled = 0;
  }

  /** Grows the body's buffer to hold at least `bytes`, doubling, never past the body's length. */
  private reserve(bytes: number): void {
    const body = this.body!;
    if (bytes <= body.length) return;
    const grown = new Uint8Array(Math.min(this.bodyLength, Math.max(body.length * 2, bytes)));
    grown.set(body.subarray(0, this.bodyFilled));
    this.body = grown;
  }

  private finishBody(onBody: (body: Uint8Array) => boolean): boolean {
    const body = this.body!;
    this.body = undefined;
    this.bodyLength = 0;
    this.bodyFilled = 0;
    return onBody(body);
  }
}

function readLength(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset + offset, FRAME_HEADER_BYTES).getUint32(0);
}
