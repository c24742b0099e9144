import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePorts } from "../../src/cli/dev/ports.js";
import { ensureBuilt, exitWithin, start, until } from "./helpers.js";

describe("a signal while the node starts", () => {
  const root = mkdtempSync(join(tmpdir(), "blixard-signal-start-"));
  beforeAll(async () => {
    await ensureBuilt();
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("stops it gracefully once it has started (exit 0), instead of killing it mid-start", async () => {
    const [peer, api] = await freePorts(2);
    const node = start([
      "node",
      "start",
      "--insecure",
      "--id",
      "1",
      "--data-dir",
      join(root, "node-1"),
      "--peer-listen",
      `127.0.0.1:${peer}`,
      "--api-listen",
      `127.0.0.1:${api}`,
      "--initial-members",
      `1=127.0.0.1:${peer}@127.0.0.1:${api}`,
    ]);
    try {
      // Logged as the start begins: storage, transport, API and election are still to come.
      await until(
        () => (node.output().includes('"msg":"node starting"') ? true : undefined),
        "the node to begin starting",
      );
      node.child.kill("SIGTERM");
      expect(await exitWithin(node.exited, 30_000), node.output()).toBe(0);
      const output = node.output();
      expect(output).toContain("stopping once the node has started");
      expect(output).toContain('"msg":"node started"');
    } finally {
      if (node.child.exitCode === null) node.child.kill("SIGKILL");
    }
  }, 60_000);
});
