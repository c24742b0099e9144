/**
 * Crash test with real processes: a child appends with durability and reports each
 * acknowledged index; it is SIGKILLed at random moments; after each kill the parent reopens the
 * directory and checks that every acknowledged entry is there, intact, with no gap.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/common/random.js";
import { NodeFileSystem } from "../../src/storage/node-fs.js";
import { WalLogStore } from "../../src/storage/wal-log-store.js";
import { childScriptCommand } from "../fixtures/child-script.js";
import { crashEntry, CRASH_SEGMENT_SIZE_BYTES, CRASH_VOTERS } from "./crash-entries.js";

const KILLS = 60;
const CHILD_SOURCE = fileURLToPath(new URL("./crash-child.ts", import.meta.url));

let workDir: string;
/** How to start the child: a bundled script (fast start) or tsx as a fallback. */
let childCommand: string[];

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "blixard-crash-"));
  childCommand = await childScriptCommand(CHILD_SOURCE, workDir);
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

interface ChildRun {
  readonly acked: number[];
  readonly readyLastIndex: number;
  readonly stderr: string;
  readonly signal: NodeJS.Signals | null;
}

/** Runs the child on `dir` and SIGKILLs it `killAfterMs` after it reports ready. */
function runAndKill(dir: string, killAfterMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...childCommand, dir], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const acked: number[] = [];
    let readyLastIndex = -1;
    let buffered = "";
    let stderr = "";
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => (stderr += chunk));
    child.stdout.on("data", (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        const [kind, value] = line.split(" ");
        if (kind === "ack") acked.push(Number(value));
        else if (kind === "ready") {
          readyLastIndex = Number(value);
          setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        }
      }
    });
    const safety = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.on("error", reject);
    // "close" waits for stdout to drain, so every ack the child wrote has been read.
    child.on("close", (_code, signal) => {
      clearTimeout(safety);
      resolve({ acked, readyLastIndex, stderr, signal });
    });
  });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);
}

describe("crash test: SIGKILL during durable appends", () => {
  it(`keeps every acknowledged entry across ${KILLS} kills`, async () => {
    const dir = join(workDir, "data");
    const random = new SeededRandom(20240605);
    let maxAckedEver = 0;
    let kills = 0;
    let totalAcked = 0;
    for (let round = 0; round < KILLS; round++) {
      const run = await runAndKill(dir, random.int(150));
      expect(run.stderr).toBe("");
      expect(run.signal).toBe("SIGKILL");
      kills++;
      totalAcked += run.acked.length;
      // The child recovered everything acknowledged before (its ready line saw it).
      expect(run.readyLastIndex).toBeGreaterThanOrEqual(maxAckedEver);
      for (const index of run.acked) maxAckedEver = Math.max(maxAckedEver, index);

      const store = await WalLogStore.open(dir, {
        fs: new NodeFileSystem(),
        confState: CRASH_VOTERS,
        segmentSizeBytes: CRASH_SEGMENT_SIZE_BYTES,
      });
      try {
        expect(store.lastIndex()).toBeGreaterThanOrEqual(maxAckedEver);
        const snapshotIndex = store.snapshotMetadata().index;
        expect(store.firstIndex()).toBe(snapshotIndex + 1);
        const all = store.entries(
          store.firstIndex(),
          store.lastIndex() + 1,
          Number.MAX_SAFE_INTEGER,
        );
        expect(all.length).toBe(store.lastIndex() - snapshotIndex);
        all.forEach((e, i) => {
          expect(e.index).toBe(snapshotIndex + 1 + i);
          const expected = crashEntry(e.index);
          if (!sameBytes(e.data, expected.data) || e.term !== expected.term) {
            throw new Error(`entry ${e.index} differs from what was written`);
          }
        });
        expect(store.initialState().hardState.commit).toBeGreaterThanOrEqual(maxAckedEver);
      } finally {
        await store.close();
      }
    }
    expect(kills).toBe(KILLS);
    // Not a timing assertion: the test is pointless if the child never got to append.
    expect(totalAcked).toBeGreaterThan(KILLS);
    console.log(
      `crash test: ${kills} SIGKILLs, ${totalAcked} acknowledged appends, last index ${maxAckedEver}`,
    );
    // Each round starts a Node child: on a loaded 2-core machine 60 of them can take over the
    // default minute (seen once beside real-QEMU tests); the bound only stops a hung test.
  }, 240_000);
});
