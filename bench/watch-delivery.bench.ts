/**
 * What kv watchers cost the node that serves them, without a cluster: a real cluster state
 * machine applied through the real change feed in this process, kv watch streams served by a
 * plain HTTP server here (`serveSseStream`, as `GET /v1/kv/watch?prefix=` serves them), and
 * `--watchers` SDK `watch()` iterators of the prefix in a forked process (cluster/watchers.ts).
 *
 *   npm run bench:watch [-- --watchers 21 --entries 10000 --rate 2000 --batch 8]
 *   npm run bench:watch -- --delivery-interval-ms 0     streams woken after every batch
 *   npm run bench:watch -- --format sse     Server-Sent Events even though the SDK asks for
 *     the binary watch format (default: what the request accepts, as the node's route does)
 *
 * Applies `--entries` puts of 128-byte text values (`--batch` per turn of the event loop, at
 * `--rate` entries/s, as a node applies committed batches) with no watcher and with the
 * watchers, each twice (the first a warm-up), and waits until every watcher received every put.
 * Prints this process's CPU per entry both times, the difference per delivered event (what the
 * node spends to deliver one event to one watcher), and the watchers' CPU per event. CPU time,
 * not throughput: on a shared machine it moves far less with the load than a cluster
 * benchmark's write rate does (21 watchers per node is what `bench:cluster --only watch` gives
 * each of its 3 members). Prints one `BENCH_JSON` line.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { ChangeFeed } from "../src/api/events/change-feed.js";
import { serveSseStream } from "../src/api/events/sse-stream.js";
import { WATCH_BINARY_MEDIA_TYPE } from "../src/common/watch-wire.js";
import { ClusterStateMachine } from "../src/statemachine/cluster/index.js";
import { encodeKvCommand } from "../src/statemachine/kv/command-codec.js";
import { encodeCommandEnvelope } from "../src/statemachine/session/envelope.js";
import { startWatchers } from "./cluster/watchers.js";

const { values: args } = parseArgs({
  options: {
    watchers: { type: "string", default: "21" },
    entries: { type: "string", default: "10000" },
    rate: { type: "string", default: "2000" },
    batch: { type: "string", default: "8" },
    "value-bytes": { type: "string", default: "128" },
    "delivery-interval-ms": { type: "string" },
    format: { type: "string", default: "accepted" },
  },
});
const WATCHERS = Number(args.watchers);
const ENTRIES = Number(args.entries);
const RATE = Number(args.rate);
const BATCH = Number(args.batch);
const PREFIX = "bench-";
/** How long the watchers may take to receive the last puts once they are applied. */
const DRAIN_TIMEOUT_MS = 30_000;
const KEYS = 1000;

const machine = new ClusterStateMachine();
const feed = new ChangeFeed(machine);
const wrapped = feed.wrap(machine);
let index = 0;
const value = new TextEncoder().encode("v".repeat(Number(args["value-bytes"])));

function put(n: number): void {
  const data = encodeCommandEnvelope({
    proposedAtMs: 0,
    payload: encodeKvCommand({ op: "put", key: `${PREFIX}${n % KEYS}`, value }),
  });
  wrapped.apply({ index: ++index, term: 1, data });
}

/** Socket writes of the streams and their bytes, so far (load on the machine moves neither). */
const written = { writes: 0, bytes: 0 };

const server = createServer((request, response) => {
  const url = new URL(request.url ?? "/", "http://x");
  // The stream writes its messages straight to the socket once the headers are out.
  const socket = request.socket;
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  socket.write = ((chunk: string | Buffer, ...rest: unknown[]) => {
    written.writes++;
    written.bytes += Buffer.byteLength(chunk);
    return write(chunk, ...rest);
  }) as typeof socket.write;
  const prefix = url.searchParams.get("prefix") ?? "";
  // A watcher cut off for falling behind comes back from where it was.
  const from = url.searchParams.get("fromRevision");
  const fromRevision = from === null ? undefined : Number(from);
  let cursor: number;
  try {
    cursor = feed.seekRevision(fromRevision);
  } catch (error) {
    response.writeHead(410, { "content-type": "application/json" });
    response.end(JSON.stringify({ code: "GONE", message: String(error) }));
    return;
  }
  serveSseStream(response, {
    feed,
    cursor,
    minRevision: fromRevision ?? 0,
    mode: "watch",
    filter: (event) => event.topic === "kv" && event.key.startsWith(prefix),
    filterKey: JSON.stringify(["prefix", prefix]),
    format:
      args.format === "sse" || !(request.headers.accept ?? "").includes(WATCH_BINARY_MEDIA_TYPE)
        ? "sse"
        : "binary",
    node: () => ({ leader: 1, term: 1 }),
    ...(args["delivery-interval-ms"] === undefined
      ? {}
      : { deliveryIntervalMs: Number(args["delivery-interval-ms"]) }),
  });
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Applies the entries at the rate; resolves once `done()` holds. CPU µs of this process. */
async function run(done: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  for (let n = 0; n < ENTRIES; n += BATCH) {
    for (let i = n; i < Math.min(ENTRIES, n + BATCH); i++) put(i);
    const dueMs = started + ((n + BATCH) * 1000) / RATE;
    await sleepMs(Math.max(0, dueMs - performance.now()));
  }
  const deadlineMs = performance.now() + DRAIN_TIMEOUT_MS;
  while (!(await done())) {
    if (performance.now() > deadlineMs) {
      throw new Error(
        `the watchers did not receive every put within ${DRAIN_TIMEOUT_MS} ms of the last ` +
          "(one cut off with GONE stops; is the machine too loaded?)",
      );
    }
    await sleepMs(5);
  }
  const used = process.cpuUsage(cpu);
  return used.user + used.system;
}

const settled = async (): Promise<boolean> => {
  await new Promise((resolve) => setImmediate(resolve));
  return true;
};
await run(settled); // warm-up
const aloneUs = await run(settled);
const watchers = await startWatchers({
  endpoints: [endpoint],
  count: WATCHERS,
  prefix: PREFIX,
  inProcess: false,
  cpuProfileDir: process.env["WATCHERS_CPU_PROF_DIR"],
});
/** One watched run (the watchers received every put); CPU µs of this process. */
async function watchedRun(): Promise<number> {
  const delivered = await watchers.delivered();
  return run(async () => (await watchers.delivered()) - delivered >= WATCHERS * ENTRIES);
}
await watchedRun(); // warm-up
const before = { delivered: await watchers.delivered(), cpuSeconds: watchers.cpuSeconds() };
const writtenBefore = { ...written };
const watchedUs = await watchedRun();
const writesPerWatcher = (written.writes - writtenBefore.writes) / WATCHERS;
const bytesPerEvent = (written.bytes - writtenBefore.bytes) / (ENTRIES * WATCHERS);
const watcherUs = (watchers.cpuSeconds() - before.cpuSeconds) * 1e6;
await watchers.stop();
server.closeAllConnections();
server.close();

const perEntryAlone = aloneUs / ENTRIES;
const perEntryWatched = watchedUs / ENTRIES;
const perEvent = (watchedUs - aloneUs) / (ENTRIES * WATCHERS);
const watcherPerEvent = watcherUs / (ENTRIES * WATCHERS);
process.stdout.write(
  `${WATCHERS} watchers, ${ENTRIES} entries at ${RATE}/s in batches of ${BATCH}: ` +
    `node CPU per entry ${perEntryAlone.toFixed(1)} µs alone, ${perEntryWatched.toFixed(1)} µs watched ` +
    `(+${(perEntryWatched - perEntryAlone).toFixed(1)} µs, ${perEvent.toFixed(2)} µs per delivered event); ` +
    `watchers' CPU ${watcherPerEvent.toFixed(2)} µs per event; ${writesPerWatcher.toFixed(0)} ` +
    `socket writes per watcher (${(ENTRIES / writesPerWatcher).toFixed(1)} entries each), ` +
    `${bytesPerEvent.toFixed(0)} bytes per event\n`,
);
process.stdout.write(
  `BENCH_JSON ${JSON.stringify({
    watchers: WATCHERS,
    entries: ENTRIES,
    rate: RATE,
    batch: BATCH,
    nodeCpuUsPerEntryAlone: perEntryAlone,
    nodeCpuUsPerEntryWatched: perEntryWatched,
    nodeCpuUsPerEvent: perEvent,
    watcherCpuUsPerEvent: watcherPerEvent,
    writesPerWatcher,
    bytesPerEvent,
  })}\n`,
);
