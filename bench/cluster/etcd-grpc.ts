/**
 * The etcd cluster of etcd.ts driven through etcd's native gRPC API, the path etcd's own clients
 * (clientv3, etcdctl) use: `etcdserverpb.KV/Put` and `KV/Range` as unary calls over
 * `@grpc/grpc-js`, one channel (one HTTP/2 connection) per member. The members, their lifecycle
 * and the member each request goes to are those of the gateway target; only `put` and `get`
 * differ. The two request messages are encoded by hand (bytes fields only), so no .proto file or
 * code generator is needed; a reply is checked only for gRPC status OK.
 */
import * as grpc from "@grpc/grpc-js";
import { EtcdCluster, type EtcdClusterOptions } from "./etcd.js";

const PUT_PATH = "/etcdserverpb.KV/Put";
const RANGE_PATH = "/etcdserverpb.KV/Range";

/** Field numbers in etcd's api/etcdserverpb/rpc.proto (3.4): PutRequest.key, .value, RangeRequest.key. */
const PUT_KEY_FIELD = 1;
const PUT_VALUE_FIELD = 2;
const RANGE_KEY_FIELD = 1;
/** Protobuf wire type of bytes fields. */
const WIRE_TYPE_LENGTH_DELIMITED = 2;
/** The deadline of a call without its own, as the gateway client's default timeout. */
const DEFAULT_TIMEOUT_MS = 5000;
/** How long to wait for every channel to connect when the caller gives no deadline. */
const CONNECT_TIMEOUT_MS = 10_000;

/** Appends `n` (a non-negative safe integer) as a protobuf base-128 varint. */
function pushVarint(out: number[], n: number): void {
  let rest = n;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

/**
 * A protobuf message made of the given bytes fields, in the order given (the canonical order is
 * by field number; etcd's decoder accepts any). A field with no bytes is left out, as proto3
 * leaves out default values.
 */
function encodeBytesFields(fields: readonly (readonly [number, Uint8Array])[]): Buffer {
  const header: number[] = [];
  const parts: Uint8Array[] = [];
  for (const [field, bytes] of fields) {
    if (bytes.length === 0) continue;
    header.length = 0;
    pushVarint(header, (field << 3) | WIRE_TYPE_LENGTH_DELIMITED);
    pushVarint(header, bytes.length);
    parts.push(Uint8Array.from(header), bytes);
  }
  return Buffer.concat(parts);
}

/** A PutRequest (no lease, prev_kv, ignore_value or ignore_lease). */
function putRequest(key: string, value: string): Buffer {
  return encodeBytesFields([
    [PUT_KEY_FIELD, Buffer.from(key)],
    [PUT_VALUE_FIELD, Buffer.from(value)],
  ]);
}

/** A RangeRequest for one key; `serializable` (field 7) stays false, so the read is linearizable. */
function rangeRequest(key: string): Buffer {
  return encodeBytesFields([[RANGE_KEY_FIELD, Buffer.from(key)]]);
}

const asIs = (bytes: Buffer): Buffer => bytes;

/** The etcd cluster under test, through gRPC. */
export class EtcdGrpcCluster extends EtcdCluster {
  readonly #clients: (grpc.Client | undefined)[] = [];

  /** See {@link EtcdCluster}; the name is "etcd grpc" unless `options.name` says otherwise. */
  constructor(bin: string, root: string, options: EtcdClusterOptions = {}) {
    super(bin, root, { name: "etcd grpc", ...options });
  }

  /**
   * Starts the members as the gateway target does, then proves the hand-written encoding: a
   * value put through gRPC must read back the same through the JSON gateway (a wrong field
   * number or length would otherwise go unseen, since replies are not decoded).
   */
  override async start(): Promise<void> {
    await super.start();
    const key = "grpc-encoding-check";
    const value = `checked ${"é".repeat(200)}`; // multi-byte and longer than one varint byte
    await this.put(0, key, value);
    await this.get(1 % this.size, key);
    const read = await this.value(0, key);
    if (read !== value) {
      throw new Error(
        `${this.name}: a gRPC PutRequest of ${JSON.stringify(value)} read back through the gateway as ${JSON.stringify(read)}`,
      );
    }
  }

  /**
   * Waits for a leader as the gateway target does, then until every member's channel is
   * connected: a channel to a restarted member may be waiting out its reconnect backoff, and a
   * call on it would fail at once instead of reaching the member.
   */
  override async waitForLeader(deadlineMs?: number): Promise<number> {
    const leader = await super.waitForLeader(deadlineMs);
    const deadline = Date.now() + (deadlineMs ?? CONNECT_TIMEOUT_MS);
    await Promise.all(
      Array.from(
        { length: this.size },
        (_, member) =>
          new Promise<void>((resolve, reject) =>
            this.#client(member).waitForReady(deadline, (error) =>
              error === undefined ? resolve() : reject(error),
            ),
          ),
      ),
    );
    return leader;
  }

  override put(member: number, key: string, value: string, timeoutMs?: number): Promise<void> {
    return this.#call(member, PUT_PATH, putRequest(key, value), timeoutMs);
  }

  override get(member: number, key: string): Promise<void> {
    return this.#call(member, RANGE_PATH, rangeRequest(key));
  }

  override async stop(): Promise<void> {
    for (const client of this.#clients) client?.close();
    this.#clients.length = 0;
    await super.stop();
  }

  /** One unary call; resolves on status OK, rejects with the gRPC error otherwise. */
  #call(
    member: number,
    path: string,
    request: Buffer,
    timeoutMs = DEFAULT_TIMEOUT_MS,
  ): Promise<void> {
    const client = this.#client(member);
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        path,
        asIs,
        asIs,
        request,
        { deadline: Date.now() + timeoutMs },
        (error) => (error === null ? resolve() : reject(error)),
      );
    });
  }

  /** The member's client, made on first use (the endpoints are known only after start). */
  #client(member: number): grpc.Client {
    const existing = this.#clients[member];
    if (existing !== undefined) return existing;
    const endpoint = this.endpoints[member];
    if (endpoint === undefined) throw new Error(`no member ${member}`);
    const client = new grpc.Client(new URL(endpoint).host, grpc.credentials.createInsecure(), {
      // A killed member's channel backs off between reconnects (up to 120 s by default); a
      // second caps it, so the channel is back soon after the member restarts.
      "grpc.max_reconnect_backoff_ms": 1000,
    });
    this.#clients[member] = client;
    return client;
  }
}
