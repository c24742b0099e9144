/** Reading a VM's console log in pieces: the last lines, what follows an offset, rotation. */
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  MAX_VM_LOG_READ_BYTES,
  readVmLog,
} from "../../../src/orchestrator/drivers/vm-log-reader.js";
import { makeTempDir } from "./helpers.js";

let temp: { dir: string; remove: () => void };
beforeEach(() => (temp = makeTempDir("vmlog")));
afterEach(() => temp.remove());

describe("readVmLog", () => {
  it("gives the last lines, then exactly what was appended since, and starts anew after a rotation", async () => {
    const log = join(temp.dir, "web.log");
    writeFileSync(log, "one\ntwo\nthree\n");
    const tail = await readVmLog(temp.dir, "web", { tailLines: 2 });
    expect(tail).toEqual({ text: "two\nthree\n", nextOffset: 14, rotated: false });
    expect((await readVmLog(temp.dir, "web", { tailLines: 0 })).text).toBe("");

    appendFileSync(log, "four\nfi");
    const next = await readVmLog(temp.dir, "web", { offset: tail.nextOffset });
    expect(next).toEqual({ text: "four\nfi", nextOffset: 21, rotated: false });
    expect((await readVmLog(temp.dir, "web", { offset: next.nextOffset })).text).toBe("");

    writeFileSync(log, "new\n");
    expect(await readVmLog(temp.dir, "web", { offset: next.nextOffset })).toEqual({
      text: "new\n",
      nextOffset: 4,
      rotated: true,
    });
  });

  it("returns at most 64 KiB per read, and a follower gets the rest next", async () => {
    const log = join(temp.dir, "big.log");
    writeFileSync(log, "x".repeat(MAX_VM_LOG_READ_BYTES + 10));
    const first = await readVmLog(temp.dir, "big", { offset: 0 });
    expect(first.text.length).toBe(MAX_VM_LOG_READ_BYTES);
    const rest = await readVmLog(temp.dir, "big", { offset: first.nextOffset });
    expect(rest.text.length).toBe(10);
  });

  it("refuses names that are not VM names and says when there is no log here", async () => {
    await expect(readVmLog(temp.dir, "../etc/passwd", {})).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await expect(readVmLog(temp.dir, "absent", {})).rejects.toMatchObject({ code: "NOT_FOUND" });
  });
});
