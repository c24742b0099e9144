import { describe, expect, it } from "vitest";
import type { FileSystem } from "./fs.js";
import { MemoryFileSystem } from "./memory-fs.js";
import {
  decodeSnapshotFile,
  encodeSnapshotFile,
  readSnapshotFile,
  writeSnapshotFile,
} from "./snapshot-file.js";
import { VOTERS } from "./testing.js";

/** A file system that records the size of every write. */
function recordingWrites(fs: MemoryFileSystem, sizes: number[]): FileSystem {
  return new Proxy(fs, {
    get(target, property, receiver) {
      if (property !== "open") return Reflect.get(target, property, receiver) as unknown;
      return async (...args: Parameters<FileSystem["open"]>) => {
        const handle = await target.open(...args);
        return new Proxy(handle, {
          get(inner, name, innerReceiver) {
            if (name !== "write") return Reflect.get(inner, name, innerReceiver) as unknown;
            return (data: Uint8Array, positionBytes: number) => {
              sizes.push(data.byteLength);
              return inner.write(data, positionBytes);
            };
          },
        });
      };
    },
  });
}

describe("snapshot files", () => {
  it("are written a piece of at most 1 MiB at a time, byte for byte what encodeSnapshotFile gives", async () => {
    const memory = new MemoryFileSystem();
    await memory.mkdir("/d");
    const sizes: number[] = [];
    const data = new Uint8Array(2.5 * 1024 * 1024 + 3).map((_, i) => (i * 31) & 0xff);
    const snapshot = { metadata: { index: 7, term: 2, confState: VOTERS }, data };
    const name = await writeSnapshotFile(recordingWrites(memory, sizes), "/d", snapshot);
    const bytes = await memory.readFile(`/d/${name}`);
    expect(Buffer.from(bytes).equals(Buffer.from(encodeSnapshotFile(snapshot)))).toBe(true);
    const decoded = decodeSnapshotFile(name, bytes, { index: 7, term: 2 }).data;
    expect(Buffer.from(decoded).equals(Buffer.from(data))).toBe(true);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1024 * 1024);
    // Header and configuration, three pieces of data, the checksum.
    expect(sizes.length).toBe(5);
  });

  it("are read several pieces at once, back byte for byte, and a piece failing part-way fails the read cleanly", async () => {
    // Once armed, the first read is slow and the third fails, while the first is still awaited.
    let armed = false;
    let reads = 0;
    const fs = new MemoryFileSystem({
      delay: async (operation) => {
        if (!armed || operation !== "read") return;
        const read = ++reads;
        if (read === 1) await new Promise((resolve) => setTimeout(resolve, 30));
        if (read === 3) throw Object.assign(new Error("injected fault"), { code: "EIO" });
      },
    });
    await fs.mkdir("/d");
    const data = new Uint8Array(6.5 * 1024 * 1024).map((_, i) => (i * 13) & 0xff);
    await writeSnapshotFile(fs, "/d", { metadata: { index: 7, term: 2, confState: VOTERS }, data });
    const back = await readSnapshotFile(fs, "/d", { index: 7, term: 2 });
    expect(Buffer.from(back.data).equals(data)).toBe(true);

    // The third read fails before the first is done: the error is the read's, and no read is
    // left unhandled (vitest fails the run on an unhandled rejection) or still running.
    armed = true;
    const outcome = await readSnapshotFile(fs, "/d", { index: 7, term: 2 }).then(
      () => "read",
      (error: Error) => error.message,
    );
    expect(outcome).toMatch(/could not read snapshot file .*EIO/);
    // It stopped there: 7 pieces, not all read.
    expect(reads).toBeLessThan(7);
  });
});
