import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RotatingLog } from "../../../src/orchestrator/drivers/rotating-log.js";
import { makeTempDir } from "./helpers.js";

let temp: { dir: string; remove: () => void };
beforeAll(() => {
  temp = makeTempDir("log");
});
afterAll(() => temp.remove());

describe("RotatingLog", () => {
  it("appends to an existing file and rotates exactly at the cap, keeping one older file", async () => {
    const path = join(temp.dir, "vm.log");
    writeFileSync(path, "old\n");
    const log = new RotatingLog(path, 10);
    log.write("0123456789"); // 4 bytes already there: 6 fit, then rotate
    log.line("abc");
    await log.finish();
    expect(readFileSync(`${path}.1`, "utf8")).toBe("old\n012345");
    expect(readFileSync(path, "utf8")).toBe("6789abc\n");
  });

  it("rotates again and again, so at most two files exist", async () => {
    const path = join(temp.dir, "chatty.log");
    const log = new RotatingLog(path, 4);
    log.write("aaaabbbbccccdd");
    await log.finish();
    expect(readFileSync(`${path}.1`, "utf8")).toBe("cccc");
    expect(readFileSync(path, "utf8")).toBe("dd");
    expect(existsSync(`${path}.2`)).toBe(false);
  });

  it("writes chunks queued behind an in-flight write together, in order, across a rotation", async () => {
    const path = join(temp.dir, "console.log");
    const log = new RotatingLog(path, 64);
    const lines = Array.from({ length: 40 }, (_, i) => `line ${i}`);
    for (const line of lines) log.line(line); // all queued before the first write completes
    await log.finish();
    const text = readFileSync(`${path}.1`, "utf8") + readFileSync(path, "utf8");
    expect(text).toBe(
      lines
        .map((line) => `${line}\n`)
        .join("")
        .slice(-text.length),
    );
    expect(readFileSync(path, "utf8").length).toBeLessThanOrEqual(64);
  });

  it("keeps going without a file when it cannot open one, and says why", async () => {
    const log = new RotatingLog(join(temp.dir, "no-such-dir", "vm.log"), 100);
    log.line("dropped");
    await log.finish();
    expect((log.failure as NodeJS.ErrnoException).code).toBe("ENOENT");
  });
});
