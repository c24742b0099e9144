/**
 * JSON text encoded ahead, a few elements at a time, into pieces of UTF-8 bytes, and copied out
 * of them into a snapshot a slice at a time: what a captured part whose size is known only once
 * encoded (the orchestrator's, the ACL state's) holds between its `prepare` and its
 * `writeSlice` calls (see `snapshot-encoding.ts`). The pieces' bytes are those of the whole text
 * encoded at once, since it is cut only between elements (never inside a character).
 */
import type { ByteWriter } from "./codec/binary.js";
import { encodeUtf8 } from "./codec/utf8.js";

/** Text is gathered into pieces of about this many UTF-16 units before it becomes bytes. */
const PIECE_CHARS = 256 * 1024;
const EMPTY = new Uint8Array(0);

/** See the module comment. */
export class SnapshotJsonPieces {
  #text: string[] = [];
  #textChars = 0;
  #pieces: Uint8Array[];
  #sizeBytes: number;
  /** Where {@link writeSlice} is: the piece and the offset in it. */
  #piece = 0;
  #offset = 0;

  /** Pieces starting with `prefix` (a part's magic and version). Throws nothing. */
  constructor(prefix: Uint8Array) {
    this.#pieces = [prefix];
    this.#sizeBytes = prefix.length;
  }

  /** Appends `text` (whole JSON tokens); returns its length in UTF-16 units. */
  push(text: string): number {
    this.#text.push(text);
    this.#textChars += text.length;
    if (this.#textChars >= PIECE_CHARS) this.flush();
    return text.length;
  }

  /**
   * One `prepare` call of a view encoding entities ahead (see `SnapshotPart.prepare`): pushes
   * `next()` until `done()`, `budgetBytes` characters or `maxEntities` texts, and flushes once
   * done. Returns the characters pushed.
   */
  pushSlice(
    next: () => string,
    done: () => boolean,
    budgetBytes: number,
    maxEntities: number,
  ): number {
    let chars = 0;
    for (let entities = 0; !done() && chars < budgetBytes && entities < maxEntities; entities++) {
      chars += this.push(next());
    }
    if (done()) this.flush();
    return chars;
  }

  /** Turns the text pushed so far into a piece. Throws nothing for JSON.stringify's output. */
  flush(): void {
    if (this.#text.length === 0) return;
    const piece = encodeUtf8(this.#text.join(""));
    this.#text = [];
    this.#textChars = 0;
    this.#pieces.push(piece);
    this.#sizeBytes += piece.length;
  }

  /** The bytes of the pieces (call {@link flush} first). */
  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /**
   * Copies the next `budgetBytes` (≥ 1) out of the pieces into `writer`, dropping each piece
   * once copied; returns true once all are.
   */
  writeSlice(writer: ByteWriter, budgetBytes: number): boolean {
    const pieces = this.#pieces;
    const start = writer.lengthBytes;
    while (this.#piece < pieces.length && writer.lengthBytes - start < budgetBytes) {
      const piece = pieces[this.#piece] as Uint8Array;
      const end = Math.min(piece.length, this.#offset + budgetBytes - (writer.lengthBytes - start));
      writer.raw(piece.subarray(this.#offset, end));
      if (end < piece.length) {
        this.#offset = end;
      } else {
        pieces[this.#piece] = EMPTY;
        this.#piece++;
        this.#offset = 0;
      }
    }
    return this.#piece === pieces.length;
  }

  /** Drops everything held. */
  clear(): void {
    this.#text = [];
    this.#pieces = [];
    this.#piece = 0;
  }
}
