/**
 * `blixard node start` loads the node's stack with `require` where Node can require ES modules
 * (20.19+) and with `import()` where it cannot (see `loadCompose` in `commands/node.ts`): a node
 * started either way serves, elects itself and stops cleanly.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePorts } from "../../src/cli/dev/ports.js";
import { ensureBuilt, exitWithin, singleNodeStartArgs, start, until } from "./helpers.js";

describe("blixard node start's loading of the node's stack", () => {
  const root = mkdtempSync(join(tmpdir(), "blixard-stack-loading-"));
  const started: ReturnType<typeof start>[] = [];

  beforeAll(async () => {
    await ensureBuilt();
  });

  afterAll(() => {
    for (const node of started) if (node.child.exitCode === null) node.child.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  });

  for (const [how, nodeFlags] of [
    ["require", []],
    ["import()", ["--no-experimental-require-module"]],
  ] as const) {
    it(`serves and elects itself with the stack loaded by ${how}`, async () => {
      const [peerPort, apiPort] = await freePorts(2);
      const peer = `127.0.0.1:${peerPort}`;
      const api = `127.0.0.1:${apiPort}`;
      const node = start(
        singleNodeStartArgs(join(root, how), peer, api, ["--log-level", "warn"]),
        nodeFlags,
      );
      started.push(node);
      const ready = await until(async () => {
        const response = await fetch(`http://${api}/readyz`).catch(() => undefined);
        return response?.status === 200 ? ((await response.json()) as unknown) : undefined;
      }, `node ${how} ready`);
      expect(ready).toEqual({ ready: true, leader: 1 });
      node.child.kill("SIGTERM");
      expect(await exitWithin(node.exited, 15_000), node.output()).toBe(0);
      // Warnings and errors only: a loader warning (an experimental feature) would show here.
      expect(node.output()).not.toMatch(/Warning|"level":"error"/);
    });
  }
});
