/**
 * kv watchers for the cluster benchmark's watch workload: `count` SDK `watchBatches()` iterators
 * of one prefix, spread over the members, each taking every event's key and value in hand and
 * checking that its revisions only rise (a duplicate or a reordering is counted, see
 * `disordered`), as the least a real watcher does with an event.
 *
 * By default they run in a process of their own (this file, forked), as watchers of a real
 * cluster run apart from the clients that write: in the load generator's process their parsing
 * would hold up its event loop, and the writes it sends, which no deployment does. Their CPU still
 * competes for this machine's cores with the servers and the load generator, and is reported
 * (`cpuSeconds`). `inProcess` runs them in the caller's process instead (the earlier setup).
 */
import { fork, type ChildProcess } from "node:child_process";
import { setMaxListeners } from "node:events";
import { fileURLToPath } from "node:url";
import { BlixardClient } from "../../src/client/index.js";
import { cpuSeconds } from "./procs.js";

/** Watchers that are running. */
export interface Watchers {
  /** Events received so far, all watchers together. */
  delivered(): Promise<number>;
  /**
   * Events so far whose revision was not above the one before in the same watch: each one is a
   * duplicate or out of order, which the watch promises never to deliver (0 expected).
   */
  disordered(): Promise<number>;
  /**
   * Delivery lag samples (ms) since the last call: for values made by {@link stampedValue}, the
   * time from the stamp to the receipt of the oldest event of each received batch (the one that
   * waited longest), so one sample per batch, cheap beside the decoding.
   */
  lagSamplesMs(): Promise<number[]>;
  /** CPU seconds their process used so far (0 when in process: the caller's own CPU has it). */
  cpuSeconds(): number;
  /** Stops them all. */
  stop(): Promise<void>;
}

/** What the parent asks the forked watchers. */
type Request = { readonly type: "count" } | { readonly type: "lag" } | { readonly type: "stop" };
/** What they answer. */
type Reply =
  | { readonly type: "ready" }
  | { readonly type: "count"; readonly delivered: number; readonly disordered: number }
  | { readonly type: "lag"; readonly samplesMs: number[] };

/** Bytes at the start of a stamped value that hold the stamp. */
const STAMP_BYTES = 20;

/** Milliseconds since the epoch, sub-millisecond, comparable across this machine's processes. */
function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * A value of `bytes` bytes (at least {@link STAMP_BYTES}) that starts with the time it is made,
 * for the watchers to time its delivery.
 */
export function stampedValue(bytes: number): string {
  return wallMs().toFixed(3).padEnd(Math.max(bytes, STAMP_BYTES), "v");
}

/** The stamp of a value made by {@link stampedValue}, or undefined. */
function stampOf(value: Uint8Array | undefined): number | undefined {
  if (value === undefined || value.length < STAMP_BYTES) return undefined;
  const stamp = Number.parseFloat(
    Buffer.from(value.buffer, value.byteOffset, STAMP_BYTES).toString("latin1"),
  );
  return Number.isFinite(stamp) ? stamp : undefined;
}

const CHILD_FLAG = "--bench-watchers-child";

/** Time given to the watchers to connect before the writes start. */
const CONNECT_MS = 500;

/** Starts `count` watchers of `prefix` in this process. */
function watchHere(
  endpoints: readonly string[],
  count: number,
  prefix: string,
): {
  delivered: () => number;
  disordered: () => number;
  lagSamplesMs: () => number[];
  stop: () => Promise<void>;
} {
  const controller = new AbortController();
  // Every watcher's request listens to this one signal.
  setMaxListeners(count + 10, controller.signal);
  let delivered = 0;
  let disordered = 0;
  let touched = 0;
  const lagSamplesMs: number[] = [];
  const watching: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const client = new BlixardClient({ endpoints: [endpoints[i % endpoints.length] as string] });
    watching.push(
      (async () => {
        let lastRevision = 0;
        // Batches, as an etcd client reads watch responses (one step per message, not event).
        for await (const batch of client.watchBatches({ prefix, signal: controller.signal })) {
          // The work a real watcher does at least: every event's key and value in hand (not
          // left to a lazy decoder that a counting loop would never trigger), its order checked.
          for (const event of batch) {
            if (event.revision <= lastRevision) disordered++;
            lastRevision = event.revision;
            const value = event.entry?.value;
            touched +=
              event.key.length + (value === undefined ? 0 : value.length + (value[0] ?? 0));
          }
          delivered += batch.length;
          const sentMs = stampOf(batch[0]?.entry?.value);
          if (sentMs !== undefined) lagSamplesMs.push(wallMs() - sentMs);
        }
      })(),
    );
  }
  return {
    // The bytes touched go with the count, so that no reading of them is dead code.
    delivered: () => (touched >= 0 ? delivered : -1),
    disordered: () => disordered,
    lagSamplesMs: () => lagSamplesMs.splice(0),
    stop: async () => {
      controller.abort();
      await Promise.allSettled(watching);
    },
  };
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Starts `count` watchers of `prefix` over `endpoints` (in a forked process unless `inProcess`),
 * and resolves once they are started.
 */
export async function startWatchers(options: {
  readonly endpoints: readonly string[];
  readonly count: number;
  readonly prefix: string;
  readonly inProcess: boolean;
  /** Forked watchers: write their process's CPU profile (node --cpu-prof) here at its exit. */
  readonly cpuProfileDir?: string | undefined;
}): Promise<Watchers> {
  const { endpoints, count, prefix } = options;
  if (options.inProcess) {
    const here = watchHere(endpoints, count, prefix);
    await sleepMs(CONNECT_MS);
    return {
      delivered: async () => here.delivered(),
      disordered: async () => here.disordered(),
      lagSamplesMs: async () => here.lagSamplesMs(),
      cpuSeconds: () => 0,
      stop: here.stop,
    };
  }
  const child: ChildProcess = fork(
    fileURLToPath(import.meta.url),
    [CHILD_FLAG, JSON.stringify({ endpoints, count, prefix })],
    {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      ...(options.cpuProfileDir === undefined
        ? {}
        : {
            execArgv: [...process.execArgv, "--cpu-prof", "--cpu-prof-dir", options.cpuProfileDir],
          }),
    },
  );
  const replies: ((reply: Reply) => void)[] = [];
  child.on("message", (reply: Reply) => replies.shift()?.(reply));
  const next = (): Promise<Reply> => new Promise((resolve) => replies.push(resolve));
  await next(); // ready
  const pid = child.pid ?? 0;
  const counts = async (): Promise<{ delivered: number; disordered: number }> => {
    const reply = next();
    child.send({ type: "count" } satisfies Request);
    const answer = await reply;
    return answer.type === "count" ? answer : { delivered: 0, disordered: 0 };
  };
  return {
    delivered: async () => (await counts()).delivered,
    disordered: async () => (await counts()).disordered,
    lagSamplesMs: async () => {
      const reply = next();
      child.send({ type: "lag" } satisfies Request);
      const answer = await reply;
      return answer.type === "lag" ? answer.samplesMs : [];
    },
    cpuSeconds: () => cpuSeconds(pid),
    stop: async () => {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.send({ type: "stop" } satisfies Request);
      await exited;
    },
  };
}

if (process.argv[2] === CHILD_FLAG && process.send !== undefined) {
  const { endpoints, count, prefix } = JSON.parse(process.argv[3] ?? "{}") as {
    endpoints: string[];
    count: number;
    prefix: string;
  };
  const here = watchHere(endpoints, count, prefix);
  await sleepMs(CONNECT_MS);
  // The benchmark went away without stopping us.
  process.on("disconnect", () => process.exit(0));
  process.on("message", (request: Request) => {
    if (request.type === "count") {
      process.send?.({
        type: "count",
        delivered: here.delivered(),
        disordered: here.disordered(),
      } satisfies Reply);
    } else if (request.type === "lag") {
      process.send?.({ type: "lag", samplesMs: here.lagSamplesMs() } satisfies Reply);
    } else {
      void here.stop().then(() => process.exit(0));
    }
  });
  process.send({ type: "ready" } satisfies Reply);
}
