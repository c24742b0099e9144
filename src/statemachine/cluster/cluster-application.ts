/**
 * The application of the cluster state machine: the kv store, the orchestrator model and the ACL
 * state side by side under one client-session layer, a command going to one of them by its first
 * byte (`namespace.ts`).
 */
import { InvalidArgumentError } from "../../common/index.js";
import { AclState } from "../acl/acl-state.js";
import { decodeAclCommand, decodeAclResult, encodeAclResult } from "../acl/codec.js";
import type { AclCommand, AclResult } from "../acl/types.js";
import type { ChangeObserver } from "../changes.js";
import type { CommandResult } from "../command-result.js";
import { ByteReader, ByteWriter } from "../codec/binary.js";
import { crc32 } from "../../common/crc32.js";
import { KvStore, type KvStoreOptions } from "../kv/store.js";
import type { KvCommand, KvResult } from "../kv/types.js";
import { decodeKvCommand } from "../kv/command-codec.js";
import { decodeKvResult, encodeKvResult } from "../kv/result-codec.js";
import { decodeOrchestratorCommand } from "../orchestrator/command-codec.js";
import type { OrchestratorCommand, OrchestratorResult } from "../orchestrator/commands.js";
import { OrchestratorModel } from "../orchestrator/model.js";
import type { OrchestratorStateOptions } from "../orchestrator/state.js";
import {
  decodeOrchestratorResult,
  encodeOrchestratorResult,
} from "../orchestrator/result-codec.js";
import type { ExecuteContext, SessionedApplication } from "../session/sessioned-state-machine.js";
import {
  bytesPart,
  checksummedParts,
  lengthPrefixedPart,
  type SnapshotPart,
} from "../snapshot-encoding.js";
import {
  ACL_NAMESPACE_BYTE,
  KV_NAMESPACE_BYTE,
  ORCHESTRATOR_NAMESPACE_BYTE,
  describeUnknownByte,
  namespaceOfByte,
} from "./namespace.js";

/** A decoded command and the namespace it belongs to. */
export type ClusterCommand =
  | { readonly namespace: "kv"; readonly command: KvCommand }
  | { readonly namespace: "orchestrator"; readonly command: OrchestratorCommand }
  | { readonly namespace: "acl"; readonly command: AclCommand };

/** A successful result and the namespace it came from. */
export type ClusterResult =
  | { readonly namespace: "kv"; readonly result: KvResult }
  | { readonly namespace: "orchestrator"; readonly result: OrchestratorResult }
  | { readonly namespace: "acl"; readonly result: AclResult };

/** Magic of a cluster snapshot: "BXCL". */
const SNAPSHOT_MAGIC = new Uint8Array([0x42, 0x58, 0x43, 0x4c]);
/**
 * The cluster snapshot format this code writes. Version 2 added the ACL part; version 1 (kv and
 * orchestrator only) is still read, as an empty ACL state.
 */
export const CLUSTER_SNAPSHOT_FORMAT_VERSION = 2;
/** The oldest cluster snapshot format this code reads. */
const OLDEST_READABLE_SNAPSHOT_VERSION = 1;
const CHECKSUM_BYTES = 4;

function tagged<T>(
  result: CommandResult<T>,
  wrap: (value: T) => ClusterResult,
): CommandResult<ClusterResult> {
  return result.ok ? { ok: true, value: wrap(result.value) } : result;
}

/**
 * The kv store, the orchestrator model and the ACL state as one {@link SessionedApplication}.
 *
 * Snapshot layout: magic "BXCL", u16 format version, the kv store's snapshot (u32 length +
 * bytes), the orchestrator's snapshot (u32 length + bytes), the ACL state's snapshot (u32 length
 * + bytes; absent in version 1), then a u32 CRC-32 of everything before it.
 */
export class ClusterApplication implements SessionedApplication<ClusterCommand, ClusterResult> {
  readonly #kvOptions: KvStoreOptions;
  readonly #orchestratorOptions: OrchestratorStateOptions;
  #kv: KvStore;
  #orchestrator: OrchestratorModel;
  #acl = new AclState();
  /** Counts ACL changes and restores in this process, so caches built on the ACL state know when to drop. */
  #aclGeneration = 0;
  #observer: ChangeObserver | undefined;

  /**
   * An empty store and model (`orchestratorOptions`: see `OrchestratorModel`; benches compare
   * its schedulers). Throws `InvalidArgumentError` if `maxStoreBytes` is out of range.
   */
  constructor(kvOptions: KvStoreOptions = {}, orchestratorOptions: OrchestratorStateOptions = {}) {
    this.#kvOptions = kvOptions;
    this.#orchestratorOptions = orchestratorOptions;
    this.#kv = new KvStore(kvOptions);
    this.#orchestrator = new OrchestratorModel(orchestratorOptions);
  }

  /**
   * Reports every change the kv store, the orchestrator and the ACL state apply to `observer`
   * (undefined: stop), kept across restores; see `../changes.ts`. Throws nothing.
   */
  observe(observer: ChangeObserver | undefined): void {
    this.#observer = observer;
    this.#kv.observe(observer);
    this.#orchestrator.observe(observer);
  }

  /** The kv store (replaced by `restore`: do not keep the reference). */
  get kv(): KvStore {
    return this.#kv;
  }

  /** The orchestrator model (replaced by `restore`: do not keep the reference). */
  get orchestrator(): OrchestratorModel {
    return this.#orchestrator;
  }

  /** The ACL state (replaced by `restore`: do not keep the reference). */
  get acl(): AclState {
    return this.#acl;
  }

  /** Changes each time the ACL state may have changed (an applied ACL command, a restore). Local, not replicated. */
  get aclGeneration(): number {
    return this.#aclGeneration;
  }

  /**
   * Decodes a payload by its first byte. Throws `InvalidArgumentError` (empty, unknown byte,
   * malformed command) or `TooLargeError` (a field over its limit). `payload` must never change: kv
   * values are views into it where that keeps little else alive, always with `stableData` (see
   * `AppliedEntry`).
   */
  decodeCommand(payload: Uint8Array, stableData = false): ClusterCommand {
    const first = payload[0];
    if (first === undefined) throw new InvalidArgumentError("malformed command: empty payload");
    switch (namespaceOfByte(first)) {
      case "kv":
        return {
          namespace: "kv",
          command: decodeKvCommand(payload, { values: stableData ? "view" : "lean" }),
        };
      case "orchestrator":
        return { namespace: "orchestrator", command: decodeOrchestratorCommand(payload) };
      case "acl":
        return { namespace: "acl", command: decodeAclCommand(payload) };
      case undefined:
        throw new InvalidArgumentError(
          `malformed command: first byte ${describeUnknownByte(first)}`,
        );
    }
  }

  /** Only a kv get is read-only; every orchestrator and ACL command changes state or may. */
  isReadOnly(command: ClusterCommand): boolean {
    return command.namespace === "kv" && this.#kv.isReadOnly(command.command);
  }

  /** Executes a decoded command in its namespace. Never throws for a decoded command. */
  execute(command: ClusterCommand, context: ExecuteContext): CommandResult<ClusterResult> {
    if (command.namespace === "kv") {
      return tagged(this.#kv.execute(command.command, context), (result) => ({
        namespace: "kv",
        result,
      }));
    }
    if (command.namespace === "acl") {
      const result = this.#acl.apply(command.command, context.logTimeMs);
      if (result.ok) {
        this.#aclGeneration++;
        this.#observer?.({ kind: "acl", command: command.command.type });
      }
      return tagged(result, (value) => ({ namespace: "acl", result: value }));
    }
    // Decoded by `decodeCommand`, which read it strictly: not read again.
    return tagged(
      this.#orchestrator.applyDecoded(command.command, context.logTimeMs),
      (result) => ({
        namespace: "orchestrator",
        result,
      }),
    );
  }

  /** Encodes a result as its namespace byte and the namespace's own encoding. Throws nothing. */
  encodeResult(result: ClusterResult): Uint8Array {
    let inner: Uint8Array;
    let tag: number;
    switch (result.namespace) {
      case "kv":
        [inner, tag] = [encodeKvResult(result.result), KV_NAMESPACE_BYTE];
        break;
      case "orchestrator":
        [inner, tag] = [encodeOrchestratorResult(result.result), ORCHESTRATOR_NAMESPACE_BYTE];
        break;
      case "acl":
        [inner, tag] = [encodeAclResult(result.result), ACL_NAMESPACE_BYTE];
        break;
    }
    return new ByteWriter(inner.length + 1).u8(tag).raw(inner).finish();
  }

  /** Decodes {@link encodeResult}'s bytes. Throws `InvalidArgumentError` if malformed. */
  decodeResult(bytes: Uint8Array): ClusterResult {
    const first = bytes[0];
    const rest = bytes.subarray(1);
    switch (first === undefined ? undefined : namespaceOfByte(first)) {
      case "kv":
        return { namespace: "kv", result: decodeKvResult(rest) };
      case "orchestrator":
        return { namespace: "orchestrator", result: decodeOrchestratorResult(rest) };
      case "acl":
        return { namespace: "acl", result: decodeAclResult(rest) };
      case undefined:
        throw new InvalidArgumentError(
          `malformed cluster result: ${first === undefined ? "empty" : `tag ${describeUnknownByte(first)}`}`,
        );
    }
  }

  /** Serializes the three parts (layout above). Throws nothing. */
  snapshot(): Uint8Array {
    const kv = this.#kv.snapshot();
    const orchestrator = this.#orchestrator.snapshot();
    const acl = this.#acl.snapshot();
    // Exactly the size written, so `finish` hands the buffer over without another copy.
    const writer = new ByteWriter(
      SNAPSHOT_MAGIC.length + 2 + 3 * 4 + kv.length + orchestrator.length + acl.length + 4,
    )
      .raw(SNAPSHOT_MAGIC)
      .u16(CLUSTER_SNAPSHOT_FORMAT_VERSION)
      .bytes(kv)
      .bytes(orchestrator)
      .bytes(acl);
    return writer.u32(crc32(writer.written())).finish();
  }

  /**
   * Captures the three parts now (the layout above; the bytes of {@link snapshot} at this call)
   * to write a slice at a time, each by its own capture. Throws nothing.
   */
  captureSnapshot(): SnapshotPart {
    const kv = this.#kv.captureSnapshot();
    const orchestrator = this.#orchestrator.captureSnapshot();
    const acl = this.#acl.captureSnapshot();
    const head = new ByteWriter(SNAPSHOT_MAGIC.length + 2 + 4)
      .raw(SNAPSHOT_MAGIC)
      .u16(CLUSTER_SNAPSHOT_FORMAT_VERSION)
      .u32(kv.sizeBytes);
    return checksummedParts([
      bytesPart(head.finish()),
      kv,
      lengthPrefixedPart(orchestrator),
      lengthPrefixedPart(acl),
    ]);
  }

  /**
   * Replaces every part with a snapshot's. All are decoded into new instances first, so bad
   * bytes in any part throw `InvalidArgumentError` and change nothing.
   */
  restore(data: Uint8Array): void {
    if (data.length < SNAPSHOT_MAGIC.length + CHECKSUM_BYTES) {
      throw new InvalidArgumentError(`malformed cluster snapshot: only ${data.length} bytes`);
    }
    const body = data.subarray(0, data.length - CHECKSUM_BYTES);
    const checksum = new ByteReader(data.subarray(body.length), "cluster snapshot").u32();
    if (crc32(body) !== checksum) {
      throw new InvalidArgumentError("malformed cluster snapshot: CRC-32 checksum mismatch");
    }
    const reader = new ByteReader(body, "cluster snapshot");
    const magic = reader.rawView(SNAPSHOT_MAGIC.length);
    if (!magic.every((byte, i) => byte === SNAPSHOT_MAGIC[i])) {
      throw reader.malformed("not a cluster snapshot (bad magic)");
    }
    const version = reader.u16();
    if (version < OLDEST_READABLE_SNAPSHOT_VERSION || version > CLUSTER_SNAPSHOT_FORMAT_VERSION) {
      throw reader.malformed(
        `unknown format version ${version}; this node reads versions ${OLDEST_READABLE_SNAPSHOT_VERSION} to ${CLUSTER_SNAPSHOT_FORMAT_VERSION}`,
      );
    }
    const kvBytes = reader.rawView(reader.u32());
    const orchestratorBytes = reader.rawView(reader.u32());
    const aclBytes = version >= 2 ? reader.rawView(reader.u32()) : undefined;
    reader.expectEnd();
    const kv = new KvStore(this.#kvOptions);
    kv.restore(kvBytes);
    const orchestrator = new OrchestratorModel(this.#orchestratorOptions);
    orchestrator.restore(orchestratorBytes);
    const acl = aclBytes === undefined ? new AclState() : AclState.restore(aclBytes);
    kv.observe(this.#observer);
    orchestrator.observe(this.#observer);
    this.#kv = kv;
    this.#orchestrator = orchestrator;
    this.#acl = acl;
    this.#aclGeneration++;
  }
}
