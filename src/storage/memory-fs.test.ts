import { describe, expect, it } from "vitest";
import { SeededRandom } from "../common/random.js";
import { MemoryFileSystem } from "./memory-fs.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function fileWith(fs: MemoryFileSystem, path: string, text: string, synced: boolean) {
  await fs.mkdir("/d");
  const handle = await fs.open(path, "createExclusive");
  await handle.write(enc(text), 0);
  if (synced) await handle.sync();
  await fs.syncDirectory("/d");
  return handle;
}

describe("MemoryFileSystem", () => {
  it("makes a durable write durable when it resolves, and nothing written before it elsewhere", async () => {
    const fs = new MemoryFileSystem();
    const plain = await fileWith(fs, "/d/f", "0123456789", true);
    await plain.write(enc("lost"), 0);
    const durable = await fs.open("/d/f", "readWrite", { durableWrites: true });
    expect(durable.durableWrites).toBe(true);
    expect((await fs.open("/d/f", "read", { durableWrites: true })).durableWrites).toBe(false);
    const syncsBefore = fs.counters.fileSyncs;
    await durable.write(enc("kept"), 6);
    expect(fs.counters.fileSyncs - syncsBefore).toBe(1);
    // As O_DSYNC flushes only the range it wrote: the earlier plain write is still exposed.
    fs.crash();
    expect(dec(await fs.readFile("/d/f"))).toBe("012345kept");
  });

  it("loses unsynced writes on a crash and keeps synced ones", async () => {
    const fs = new MemoryFileSystem();
    const handle = await fileWith(fs, "/d/f", "durable", true);
    await handle.write(enc("-lost"), 7);
    expect(dec(fs.contentOf("/d/f"))).toBe("durable-lost");
    fs.crash();
    expect(dec(await fs.readFile("/d/f"))).toBe("durable");
    await expect(handle.write(enc("x"), 0)).rejects.toMatchObject({ code: "EBADF" });
  });

  it("loses a file whose directory entry was never synced", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir("/d");
    const handle = await fs.open("/d/new", "createExclusive");
    await handle.write(enc("x"), 0);
    await handle.sync();
    fs.crash();
    expect(await fs.exists("/d/new")).toBe(false);
  });

  it("reverts an unsynced rename and keeps a synced one", async () => {
    const fs = new MemoryFileSystem();
    await fileWith(fs, "/d/a", "A", true);
    await fs.rename("/d/a", "/d/b");
    fs.crash();
    expect(await fs.list("/d")).toEqual(["a"]);
    await fs.rename("/d/a", "/d/b");
    await fs.syncDirectory("/d");
    fs.crash();
    expect(await fs.list("/d")).toEqual(["b"]);
  });

  it("keeps a prefix of unsynced writes with the last one torn", async () => {
    const fs = new MemoryFileSystem();
    const handle = await fileWith(fs, "/d/f", "", true);
    await handle.write(enc("aaaa"), 0);
    await handle.write(enc("bbbb"), 4);
    fs.crash({ unsyncedWrites: "tornPrefix", random: new SeededRandom(3) });
    const text = dec(await fs.readFile("/d/f"));
    expect("aaaabbbb".startsWith(text)).toBe(true);
  });

  it("keeps everything on a process kill", async () => {
    const fs = new MemoryFileSystem();
    const handle = await fileWith(fs, "/d/f", "x", false);
    await handle.write(enc("y"), 1);
    fs.crash({ unsyncedWrites: "keep" });
    expect(dec(await fs.readFile("/d/f"))).toBe("xy");
  });

  it("flips bits, refuses exclusive creation of an existing file, injects faults, counts", async () => {
    const fs = new MemoryFileSystem();
    const handle = await fileWith(fs, "/d/f", "A", true);
    fs.flipBit("/d/f", 0, 0);
    expect(dec(await fs.readFile("/d/f"))).toBe("@");
    await expect(fs.open("/d/f", "createExclusive")).rejects.toMatchObject({ code: "EEXIST" });
    await expect(fs.open("/d/missing", "read")).rejects.toMatchObject({ code: "ENOENT" });
    fs.failWhen = (op) => op === "datasync";
    await expect(handle.datasync()).rejects.toMatchObject({ code: "EIO" });
    expect(fs.counters).toMatchObject({ writes: 1, fileSyncs: 1, directorySyncs: 1 });
    expect(fs.isProcessAlive(fs.processId())).toBe(true);
    const before = fs.processId();
    fs.crash();
    expect(fs.isProcessAlive(before)).toBe(false);
  });
});
