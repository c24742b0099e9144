/** The audit log file: JSON lines, mode 0600, rotation by size keeping N files. */
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AuditLog } from "../../src/api/audit/audit-log.js";

let dir: string | undefined;
afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("AuditLog", () => {
  it("appends JSON lines to a 0600 file and rotates by size, keeping keepFiles old files", async () => {
    dir = await mkdtemp(join(tmpdir(), "blixard-audit-"));
    const path = join(dir, "audit.log");
    const log = await AuditLog.open(path, { maxBytes: 200, keepFiles: 2 });
    for (let i = 0; i < 40; i++) {
      log.record({ i, route: "/v1/kv/:key" });
      if (i % 5 === 0) await log.flush();
    }
    await log.close();
    expect(log.failure).toBeUndefined();
    expect((await readdir(dir)).sort()).toEqual(["audit.log", "audit.log.1", "audit.log.2"]);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const lines: number[] = [];
    for (const name of ["audit.log.2", "audit.log.1", "audit.log"]) {
      const text = await readFile(join(dir, name), "utf8");
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(200 + 40);
      for (const line of text.trim().split("\n")) lines.push((JSON.parse(line) as { i: number }).i);
    }
    // The newest lines survive, in order, ending with the last one.
    expect(lines.at(-1)).toBe(39);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
  });

  it("holds lines for a short window so that they share one write, then writes them unasked", async () => {
    dir = await mkdtemp(join(tmpdir(), "blixard-audit-"));
    const path = join(dir, "audit.log");
    const log = await AuditLog.open(path, { flushDelayMs: 200 });
    for (let i = 0; i < 10; i++) log.record({ i });
    // Nothing is written while the window is open.
    await new Promise((resolve) => setImmediate(resolve));
    expect((await stat(path)).size).toBe(0);
    // Then everything is, without a flush.
    const deadline = Date.now() + 10_000;
    let text = "";
    while (text.split("\n").length <= 10 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      text = await readFile(path, "utf8");
    }
    expect(
      text
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as { i: number }).i),
    ).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // close() writes what the window still holds.
    log.record({ i: 10 });
    await log.close();
    expect((await readFile(path, "utf8")).trim().split("\n")).toHaveLength(11);
  });
});
