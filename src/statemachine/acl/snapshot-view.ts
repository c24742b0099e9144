/**
 * The ACL state as it stood at a snapshot's capture, encoded a slice at a time while the state
 * keeps changing (`AclState.captureSnapshot` makes one); its bytes are `AclState.snapshot()`'s at
 * the capture. Policies, tokens and bindings are replaced or removed on change, never mutated, so
 * copies of the three lists at the capture (one pointer per entity) are the state then: nothing
 * needs preserving. Sorting and encoding happen in {@link AclSnapshotView.prepare}, a bounded
 * number of entities per call, into pieces (the enclosing snapshot puts the part's length first).
 */
import type { ByteWriter } from "../codec/binary.js";
import type { SnapshotPart } from "../snapshot-encoding.js";
import { SnapshotJsonPieces } from "../snapshot-json-pieces.js";
import type { AclCertBinding, AclPolicy, AclToken } from "./types.js";

/** Entities encoded per {@link AclSnapshotView.prepare} call at most. */
export const ACL_SNAPSHOT_ENTITIES_PER_SLICE = 256;

/** What `AclState.captureSnapshot` hands a view: the state at the capture, lists in no order. */
export interface AclCapture {
  readonly magicAndVersion: Uint8Array;
  readonly bootstrapped: boolean;
  readonly policies: AclPolicy[];
  readonly tokens: AclToken[];
  readonly bindings: AclCertBinding[];
}

/** Where the encoding is, in the order of the JSON. */
const Stage = { Head: 0, Policies: 1, Tokens: 2, Bindings: 3, Done: 4 } as const;
type Stage = (typeof Stage)[keyof typeof Stage];

/** By `key`, as `AclState` sorts its maps' keys (`Array.prototype.sort`: UTF-16 order). */
function byKey<T>(key: (value: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const keyA = key(a);
    const keyB = key(b);
    return keyA < keyB ? -1 : keyA > keyB ? 1 : 0;
  };
}

/** The ACL part of a captured snapshot; see the module comment. */
export class AclSnapshotView implements SnapshotPart {
  /** Undefined once released. */
  #capture: AclCapture | undefined;
  readonly #pieces: SnapshotJsonPieces;
  #stage: Stage = Stage.Head;
  #next = 0;

  /** A view of `capture` (its lists are the view's to sort). Throws nothing. */
  constructor(capture: AclCapture) {
    this.#capture = capture;
    this.#pieces = new SnapshotJsonPieces(capture.magicAndVersion);
  }

  /** @inheritdoc */
  get prepared(): boolean {
    return this.#stage === Stage.Done;
  }

  /** @inheritdoc Encodes up to {@link ACL_SNAPSHOT_ENTITIES_PER_SLICE} entities. */
  prepare(budgetBytes: number): number {
    return this.#pieces.pushSlice(
      () => this.#nextText(),
      () => this.#stage === Stage.Done,
      budgetBytes,
      ACL_SNAPSHOT_ENTITIES_PER_SLICE,
    );
  }

  /** @inheritdoc */
  get sizeBytes(): number {
    return this.#pieces.sizeBytes;
  }

  /** @inheritdoc */
  writeSlice(writer: ByteWriter, budgetBytes: number): boolean {
    return this.#pieces.writeSlice(writer, budgetBytes);
  }

  /** @inheritdoc */
  release(): void {
    this.#pieces.clear();
    this.#capture = undefined;
  }

  /** The next element of the JSON text (an entity with its separator, or the text between lists). */
  #nextText(): string {
    const capture = this.#capture as AclCapture;
    const position = this.#next++;
    const comma = position === 0 ? "" : ",";
    let entity: AclPolicy | AclToken | AclCertBinding | undefined;
    switch (this.#stage) {
      case Stage.Head:
        // Sorted here rather than at the capture (up to MAX_ACL_TOKENS entries).
        capture.policies.sort(byKey((policy) => policy.name));
        capture.tokens.sort(byKey((token) => token.accessorId));
        capture.bindings.sort(byKey((binding) => binding.commonName));
        return this.#advance(
          Stage.Policies,
          `{"bootstrapped":${JSON.stringify(capture.bootstrapped)},"policies":[`,
        );
      case Stage.Policies:
        entity = capture.policies[position];
        if (entity === undefined) return this.#advance(Stage.Tokens, `],"tokens":[`);
        break;
      case Stage.Tokens:
        entity = capture.tokens[position];
        if (entity === undefined) return this.#advance(Stage.Bindings, `],"bindings":[`);
        break;
      case Stage.Bindings:
        entity = capture.bindings[position];
        if (entity === undefined) return this.#advance(Stage.Done, "]}");
        break;
      case Stage.Done:
        return "";
    }
    return comma + JSON.stringify(entity);
  }

  #advance(stage: Stage, text: string): string {
    this.#stage = stage;
    this.#next = 0;
    return text;
  }
}
