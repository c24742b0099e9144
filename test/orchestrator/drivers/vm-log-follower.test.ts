import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { VmLogFollower } from "../../../src/orchestrator/drivers/vm-log-follower.js";

describe("VmLogFollower", () => {
  it("follows on after a read fails, and the failure is no unhandled rejection", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bx-follow-"));
    const path = join(dir, "web.log");
    writeFileSync(path, "first\n");
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    let failed = false;
    let next: (text: string) => void = () => undefined;
    const second = new Promise<string>((resolve) => (next = resolve));
    // The first read fails inside the follower (its consumer throws, as a failing disk's read
    // would: the read's promise rejects); the line written meanwhile must still arrive.
    const follower = new VmLogFollower(
      dir,
      "web",
      { offset: 0, inode: undefined },
      {
        text: (text) => {
          if (!failed) {
            failed = true;
            appendFileSync(path, "second\n");
            throw new Error("the read failed");
          }
          next(text);
          return true;
        },
        rotated: () => undefined,
      },
    );
    try {
      expect(await second).toBe("second\n");
      expect(unhandled).toEqual([]);
    } finally {
      follower.close();
      process.off("unhandledRejection", onUnhandled);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
