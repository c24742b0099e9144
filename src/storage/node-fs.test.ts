import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NodeFileSystem } from "./node-fs.js";
import { WalLogStore } from "./wal-log-store.js";
import { entries, VOTERS } from "./testing.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "blixard-nodefs-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("NodeFileSystem", () => {
  it("does what the port says: create, write, read, sync, rename, list, remove", async () => {
    const fs = new NodeFileSystem();
    const path = join(dir, "f");
    const handle = await fs.open(path, "createExclusive");
    await handle.write(new Uint8Array([1, 2, 3]), 0);
    await handle.write(new Uint8Array([9]), 5);
    await handle.datasync();
    expect(await handle.sizeBytes()).toBe(6);
    const buffer = new Uint8Array(10);
    expect(await handle.read(buffer, 0)).toBe(6);
    await handle.truncate(2);
    await handle.close();
    expect(await fs.readFile(path)).toEqual(new Uint8Array([1, 2]));
    await expect(fs.open(path, "createExclusive")).rejects.toMatchObject({ code: "EEXIST" });
    await fs.rename(path, join(dir, "g"));
    await fs.syncDirectory(dir);
    expect(await fs.list(dir)).toEqual(["g"]);
    expect((await fs.stat(join(dir, "g"))).sizeBytes).toBe(2);
    await fs.remove(join(dir, "g"));
    expect(await fs.exists(join(dir, "g"))).toBe(false);
    expect(fs.isProcessAlive(fs.processId())).toBe(true);
  });

  it("runs the WAL log store on a real directory, with the lock held against a second open", async () => {
    const fs = new NodeFileSystem();
    const store = await WalLogStore.open(dir, { fs, confState: VOTERS });
    await store.save({ entries: entries(1, 3, 1) }, { sync: true });
    await expect(WalLogStore.open(dir, { fs })).rejects.toThrow(
      `data directory ${dir} is in use by process ${process.pid}`,
    );
    await store.close();
    const reopened = await WalLogStore.open(dir, { fs });
    expect(reopened.entries(1, 4, 1e9)).toEqual(entries(1, 3, 1));
    await reopened.close();
  });
});
