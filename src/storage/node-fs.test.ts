import { constants } from "node:fs";
import { mkdtemp, readdir, readFile, readlink, rm } from "node:fs/promises";
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

/** The open flags of this process's descriptor for `path` (from /proc/self/fdinfo). */
async function openFlags(path: string): Promise<number> {
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
    if (target !== path) continue;
    const info = await readFile(`/proc/self/fdinfo/${fd}`, "utf8");
    const flags = /^flags:\s+([0-7]+)$/m.exec(info)?.[1];
    if (flags !== undefined) return Number.parseInt(flags, 8);
  }
  throw new Error(`no descriptor open for ${path}`);
}

describe("NodeFileSystem", () => {
  it("opens a file for durable writes with O_DSYNC, and only when asked", async () => {
    const fs = new NodeFileSystem();
    const durablePath = join(dir, "durable");
    const durable = await fs.open(durablePath, "createExclusive", { durableWrites: true });
    expect(durable.durableWrites).toBe(true);
    expect((await openFlags(durablePath)) & constants.O_DSYNC).toBe(constants.O_DSYNC);
    await durable.write(new Uint8Array([1, 2, 3]), 0);
    await durable.close();
    const plainPath = join(dir, "plain");
    const plain = await fs.open(plainPath, "createExclusive");
    expect(plain.durableWrites).toBe(false);
    expect((await openFlags(plainPath)) & constants.O_DSYNC).toBe(0);
    await plain.close();
    expect(await fs.readFile(durablePath)).toEqual(new Uint8Array([1, 2, 3]));
  });

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
