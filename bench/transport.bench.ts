/**
 * Peer transport candidates, measured: batches of raft messages over (a) framed TCP on
 * node:net, (b) node:http2 with one long-lived bidirectional stream, (c) node:http2 with one
 * stream per batch, (d) @grpc/grpc-js bidirectional streaming. Every candidate carries the same
 * protobuf MessageBatch (src/transport/codec.ts); the server runs in a child process, decodes
 * each batch and answers with a batch of as many AppResp messages. Prints numbers; asserts
 * nothing.
 *
 *   npm run bench:transport [-- --seconds 2 --batch 64 --window 32 --payload 128 --only tcp
 *                            --generated-codec]
 *
 * Throughput: `window` batches of `batch` App messages (one `payload`-byte entry each) in
 * flight. Latency: one batch of one message in flight, round trip p50/p99.
 */
import { fork, type ChildProcess } from "node:child_process";
import { connect as http2Connect, createServer as createHttp2Server } from "node:http2";
import { createServer, connect as netConnect } from "node:net";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { message, MessageType, type Message } from "../src/raft/types.js";
import {
  decodeFrame,
  encodeFrame,
  frame,
  fromWireMessage,
  toWireMessage,
} from "../src/transport/codec.js";
import { decodeBatchFrame, encodeBatchFrame } from "../src/transport/batch-codec.js";
import { FrameReader } from "../src/transport/frame-reader.js";
import { MessageBatchSchema } from "../src/transport/gen/blixard/raft/v1/raft_pb.js";

const CANDIDATES = ["tcp", "http2-stream", "http2-per-batch", "grpc-stream"] as const;
type Candidate = (typeof CANDIDATES)[number];
const MAX_FRAME_BYTES = 64 * 1024 * 1024;
const GRPC_PATH = "/blixard.bench.v1.Bench/Stream";

// ---------------------------------------------------------------------------------------------
// The work on both sides: encode a batch, decode it, answer with as many responses.

const useGeneratedCodec = process.argv.includes("--generated-codec");

/** The frame of a batch, through the transport's codec (or the generated one, for comparison). */
function encodeBatch(messages: readonly Message[]): Uint8Array {
  if (!useGeneratedCodec) return encodeBatchFrame({ clusterId: "bench", from: 1, to: 2, messages });
  const value = create(MessageBatchSchema, {
    clusterId: "bench",
    from: 1n,
    to: 2n,
    messages: messages.map((m) => toWireMessage(m)),
  });
  return encodeFrame(frame({ case: "batch", value }));
}

function decodeBatch(body: Uint8Array): Message[] {
  if (!useGeneratedCodec) return decodeBatchFrame(body).messages;
  const f = decodeFrame(body);
  if (f.kind.case !== "batch") throw new Error(`expected a batch, got ${f.kind.case}`);
  return f.kind.value.messages.map(fromWireMessage);
}

/** Microseconds to encode and to decode one batch, with the given codec. */
function codecCost(batch: number, payload: number): Record<string, number> {
  const messages = appBatch(batch, payload);
  const time = (fn: () => void): number => {
    for (let i = 0; i < 500; i++) fn();
    const start = performance.now();
    for (let i = 0; i < 2000; i++) fn();
    return ((performance.now() - start) * 1000) / 2000;
  };
  const generated = (): Uint8Array =>
    encodeFrame(
      frame({
        case: "batch",
        value: create(MessageBatchSchema, {
          clusterId: "bench",
          from: 1n,
          to: 2n,
          messages: messages.map((m) => toWireMessage(m)),
        }),
      }),
    );
  const hand = (): Uint8Array => encodeBatchFrame({ clusterId: "bench", from: 1, to: 2, messages });
  const body = hand().subarray(4);
  return {
    "generated encode µs": time(generated),
    "generated decode µs": time(() => {
      const f = decodeFrame(body);
      if (f.kind.case === "batch") f.kind.value.messages.map(fromWireMessage);
    }),
    "hand-written encode µs": time(hand),
    "hand-written decode µs": time(() => decodeBatchFrame(body)),
  };
}

/** The server's answer to one batch frame body: one AppResp per message, as a full frame. */
function answer(body: Uint8Array): Uint8Array {
  const responses = decodeBatch(body).map((m) =>
    message({ type: MessageType.AppResp, from: m.to, to: m.from, term: m.term, index: m.index }),
  );
  return encodeBatch(responses);
}

/** A frame without its 4-byte length prefix (gRPC and per-batch HTTP/2 frame messages themselves). */
const bodyOf = (framed: Uint8Array): Uint8Array => framed.subarray(4);

// ---------------------------------------------------------------------------------------------
// Servers (in the child process)

async function serve(candidate: Candidate): Promise<number> {
  switch (candidate) {
    case "tcp": {
      const server = createServer((socket) => {
        socket.setNoDelay(true);
        const reader = new FrameReader(MAX_FRAME_BYTES);
        socket.on("data", (chunk: Buffer) => {
          socket.cork();
          for (const body of reader.push(chunk)) socket.write(answer(body));
          socket.uncork();
        });
      });
      return listen(
        (port, done) => server.listen(port, "127.0.0.1", done),
        () => server.address(),
      );
    }
    case "http2-stream":
    case "http2-per-batch": {
      const server = createHttp2Server();
      server.on("stream", (stream) => {
        stream.respond({ ":status": 200 });
        if (candidate === "http2-stream") {
          const reader = new FrameReader(MAX_FRAME_BYTES);
          stream.on("data", (chunk: Buffer) => {
            for (const body of reader.push(chunk)) stream.write(answer(body));
          });
        } else {
          const chunks: Buffer[] = [];
          stream.on("data", (chunk: Buffer) => chunks.push(chunk));
          stream.on("end", () => stream.end(bodyOf(answer(Buffer.concat(chunks)))));
        }
      });
      return listen(
        (port, done) => server.listen(port, "127.0.0.1", done),
        () => server.address(),
      );
    }
    case "grpc-stream": {
      const server = new grpc.Server();
      const identity = (b: Buffer): Buffer => b;
      server.addService(
        {
          stream: {
            path: GRPC_PATH,
            requestStream: true,
            responseStream: true,
            requestSerialize: identity,
            requestDeserialize: identity,
            responseSerialize: identity,
            responseDeserialize: identity,
          },
        },
        {
          stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
            call.on("data", (body: Buffer) => call.write(Buffer.from(bodyOf(answer(body)))));
            call.on("end", () => call.end());
          },
        },
      );
      return new Promise((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) =>
          error === null ? resolve(port) : reject(error),
        ),
      );
    }
  }
}

function listen(
  start: (port: number, done: () => void) => void,
  address: () => unknown,
): Promise<number> {
  return new Promise((resolve) => start(0, () => resolve((address() as { port: number }).port)));
}

// ---------------------------------------------------------------------------------------------
// Clients: send a framed batch, get told when each answer arrives (answers come in order).

interface Channel {
  send(framed: Uint8Array): void;
  close(): void;
}

async function open(candidate: Candidate, port: number, onAnswer: () => void): Promise<Channel> {
  switch (candidate) {
    case "tcp": {
      const socket = netConnect({ host: "127.0.0.1", port });
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      socket.setNoDelay(true);
      const reader = new FrameReader(MAX_FRAME_BYTES);
      socket.on("data", (chunk: Buffer) => {
        for (const body of reader.push(chunk)) {
          decodeBatch(body);
          onAnswer();
        }
      });
      return { send: (framed) => socket.write(framed), close: () => socket.destroy() };
    }
    case "http2-stream": {
      const session = http2Connect(`http://127.0.0.1:${port}`);
      const stream = session.request({ ":method": "POST", ":path": "/raft" });
      const reader = new FrameReader(MAX_FRAME_BYTES);
      stream.on("data", (chunk: Buffer) => {
        for (const body of reader.push(chunk)) {
          decodeBatch(body);
          onAnswer();
        }
      });
      return { send: (framed) => stream.write(framed), close: () => session.destroy() };
    }
    case "http2-per-batch": {
      const session = http2Connect(`http://127.0.0.1:${port}`);
      return {
        send: (framed) => {
          const stream = session.request({ ":method": "POST", ":path": "/raft" });
          const chunks: Buffer[] = [];
          stream.on("data", (chunk: Buffer) => chunks.push(chunk));
          stream.on("end", () => {
            decodeBatch(Buffer.concat(chunks));
            onAnswer();
          });
          stream.end(bodyOf(framed));
        },
        close: () => session.destroy(),
      };
    }
    case "grpc-stream": {
      const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      const identity = (b: Buffer): Buffer => b;
      const call = client.makeBidiStreamRequest(GRPC_PATH, identity, identity);
      call.on("data", (body: Buffer) => {
        decodeBatch(body);
        onAnswer();
      });
      call.on("error", () => undefined);
      return {
        send: (framed) => call.write(Buffer.from(bodyOf(framed))),
        close: () => {
          call.cancel();
          client.close();
        },
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Measurement

function appBatch(count: number, payloadBytes: number): Message[] {
  const data = new Uint8Array(payloadBytes).fill(7);
  return Array.from({ length: count }, (_, i) =>
    message({
      type: MessageType.App,
      from: 1,
      to: 2,
      term: 5,
      logTerm: 5,
      index: 1000 + i,
      commit: 999,
      entries: [{ term: 5, index: 1001 + i, type: 0, data }],
    }),
  );
}

async function throughput(
  candidate: Candidate,
  port: number,
  options: { seconds: number; batch: number; window: number; payload: number },
): Promise<{ messagesPerSecond: number; batchesPerSecond: number }> {
  const messages = appBatch(options.batch, options.payload);
  let answered = 0;
  let counting = false;
  let counted = 0;
  let stop = false;
  let finish = (): void => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let inFlight = 0;
  const channel = await open(candidate, port, () => {
    answered++;
    inFlight--;
    if (counting) counted++;
    if (stop) {
      if (inFlight === 0) finish();
      return;
    }
    // Encode per send: the sender's cost is part of what is measured.
    inFlight++;
    channel.send(encodeBatch(messages));
  });
  for (let i = 0; i < options.window; i++) {
    inFlight++;
    channel.send(encodeBatch(messages));
  }
  await sleep(500); // warm-up: JIT, connection windows
  counting = true;
  const start = performance.now();
  await sleep(options.seconds * 1000);
  counting = false;
  const seconds = (performance.now() - start) / 1000;
  stop = true;
  await finished;
  channel.close();
  void answered;
  return {
    messagesPerSecond: (counted * options.batch) / seconds,
    batchesPerSecond: counted / seconds,
  };
}

async function latency(
  candidate: Candidate,
  port: number,
  options: { rounds: number; batch: number; payload: number },
): Promise<{ p50Us: number; p99Us: number }> {
  const messages = appBatch(options.batch, options.payload);
  let resolveAnswer = (): void => undefined;
  const channel = await open(candidate, port, () => resolveAnswer());
  const roundTripUs: number[] = [];
  for (let i = 0; i < options.rounds + 200; i++) {
    const t0 = performance.now();
    const answered = new Promise<void>((resolve) => (resolveAnswer = resolve));
    channel.send(encodeBatch(messages));
    await answered;
    if (i >= 200) roundTripUs.push((performance.now() - t0) * 1000); // first 200: warm-up
  }
  channel.close();
  roundTripUs.sort((a, b) => a - b);
  const at = (q: number): number =>
    roundTripUs[Math.min(roundTripUs.length - 1, Math.floor(q * roundTripUs.length))]!;
  return { p50Us: at(0.5), p99Us: at(0.99) };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function startServer(candidate: Candidate): Promise<{ child: ChildProcess; port: number }> {
  const args = ["--serve", candidate, ...(useGeneratedCodec ? ["--generated-codec"] : [])];
  const child = fork(fileURLToPath(import.meta.url), args, {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (m) => resolve((m as { port: number }).port));
    child.once("exit", (code) => reject(new Error(`server for ${candidate} exited with ${code}`)));
  });
  return { child, port };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: "string" },
      seconds: { type: "string", default: "2" },
      batch: { type: "string", default: "64" },
      window: { type: "string", default: "32" },
      payload: { type: "string", default: "128" },
      rounds: { type: "string", default: "3000" },
      only: { type: "string" },
      "generated-codec": { type: "boolean", default: false },
    },
  });
  if (values.serve !== undefined) {
    const port = await serve(values.serve as Candidate);
    process.send?.({ port });
    return;
  }
  const options = {
    seconds: Number(values.seconds),
    batch: Number(values.batch),
    window: Number(values.window),
    payload: Number(values.payload),
  };
  const rounds = Number(values.rounds);
  console.log(
    `transport candidates on loopback, server in a child process; throughput: ${options.window} batches × ${options.batch} App messages (${options.payload}-byte entry) in flight for ${options.seconds} s; latency: 1 batch in flight, ${rounds} round trips`,
  );
  const cost = codecCost(options.batch, options.payload);
  console.log(`codec, one batch of ${options.batch} App messages:`);
  console.table(Object.fromEntries(Object.entries(cost).map(([k, v]) => [k, Math.round(v)])));
  console.log(
    `candidates use the ${useGeneratedCodec ? "generated (protobuf-es)" : "hand-written"} batch codec`,
  );
  const rows: Record<string, string | number>[] = [];
  for (const candidate of CANDIDATES) {
    if (values.only !== undefined && values.only !== candidate) continue;
    const { child, port } = await startServer(candidate);
    try {
      const t = await throughput(candidate, port, options);
      const one = await latency(candidate, port, { rounds, batch: 1, payload: options.payload });
      const many = await latency(candidate, port, {
        rounds: Math.ceil(rounds / 3),
        batch: options.batch,
        payload: options.payload,
      });
      rows.push({
        candidate,
        "messages/s": Math.round(t.messagesPerSecond),
        "batches/s": Math.round(t.batchesPerSecond),
        "rtt p50 µs (1 msg)": Math.round(one.p50Us),
        "rtt p99 µs (1 msg)": Math.round(one.p99Us),
        [`rtt p50 µs (${options.batch} msgs)`]: Math.round(many.p50Us),
        [`rtt p99 µs (${options.batch} msgs)`]: Math.round(many.p99Us),
      });
    } catch (error) {
      rows.push({ candidate, error: String(error) });
    } finally {
      child.kill();
    }
  }
  console.table(rows);
}

await main();
