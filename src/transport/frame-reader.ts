import { TooLargeError } from "../common/errors.js";
import { FRAME_HEADER_BYTES } from "./codec.js";

/**
 * Splits a byte stream into frame bodies (4-byte big-endian length, then the body). Each body is
 * copied once, into a buffer of exactly its size, however many socket chunks it spans; a frame
 * that fits inside one chunk is returned as a view without any copy.
 */
export class FrameReader {
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  /** The body being filled, once its header is known. */
  private body: Uint8Array | undefined;
  private bodyFilled = 0;

  /** @param maxFrameSizeBytes bodies larger than this are refused. */
  constructor(private readonly maxFrameSizeBytes: number) {}

  /**
   * Consumes `chunk` and returns the frame bodies it completes, in order.
   * @throws TooLargeError when a frame's declared length exceeds the limit; the stream is then
   *   unusable (its framing is lost) and must be closed.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const bodies: Uint8Array[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.body === undefined) {
        // Fast path: a whole header and body inside the chunk, and nothing buffered.
        if (this.headerFilled === 0 && chunk.length - offset >= FRAME_HEADER_BYTES) {
          const length = readLength(chunk, offset);
          this.checkLength(length);
          if (chunk.length - offset - FRAME_HEADER_BYTES >= length) {
            const start = offset + FRAME_HEADER_BYTES;
            bodies.push(chunk.subarray(start, start + length));
            offset = start + length;
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
        continue;
      }
      const take = Math.min(this.body.length - this.bodyFilled, chunk.length - offset);
      this.body.set(chunk.subarray(offset, offset + take), this.bodyFilled);
      this.bodyFilled += take;
      offset += take;
      if (this.bodyFilled === this.body.length) {
        bodies.push(this.body);
        this.body = undefined;
      }
    }
    // A zero-length body completes as soon as its header is read.
    if (this.body !== undefined && this.body.length === 0) {
      bodies.push(this.body);
      this.body = undefined;
    }
    return bodies;
  }

  /** Bytes held for an incomplete frame. */
  get bufferedBytes(): number {
    return this.headerFilled + (this.body === undefined ? 0 : this.bodyFilled);
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
    this.body = new Uint8Array(length);
    this.bodyFilled = 0;
  }
}

function readLength(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset + offset, FRAME_HEADER_BYTES).getUint32(0);
}
