/**
 * `node start` settings from a config file and `BLIXARD_*` variables, under flags: a flag beats
 * its variable, which beats the file, which beats the default.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlixardClient } from "../../src/client/index.js";
import { defaultHeartbeatTicks } from "../../src/api/heartbeat-ticks.js";
import { freePorts } from "../../src/cli/dev/ports.js";
import { BIN, cli, ensureBuilt, exitWithin, until } from "./helpers.js";
import { createTestPki } from "./pki.js";

describe("node start settings", () => {
  const root = mkdtempSync(join(tmpdir(), "blixard-config-test-"));

  beforeAll(ensureBuilt);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function configFile(name: string, settings: unknown): string {
    const path = join(root, name);
    writeFileSync(path, JSON.stringify(settings));
    return path;
  }

  it("takes settings from the file, variables over the file, flags over both", async () => {
    const [peer, api] = await freePorts(2);
    const dataDir = join(root, "node");
    const pki = await createTestPki(root, "from-env");
    await pki.provision(dataDir, 7);
    const file = configFile("node.json", {
      dataDir,
      id: 7,
      peerListen: `127.0.0.1:${peer}`,
      apiListen: `127.0.0.1:${api}`,
      clusterId: "from-file",
      logLevel: "debug",
    });
    const child = spawn(process.execPath, [BIN, "node", "start", "--log-level", "warn"], {
      env: { ...process.env, BLIXARD_CONFIG: file, BLIXARD_CLUSTER_ID: "from-env" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      const client = new BlixardClient({
        endpoints: [`https://127.0.0.1:${api}`],
        retries: 0,
        ...pki.clientOptions,
      });
      const status = await until(
        () =>
          client.status().then(
            (s) => (s.leader === 7 ? s : undefined),
            () => undefined,
          ),
        "the single node from the config file to lead",
      );
      expect(status.id).toBe(7);
      const stored = JSON.parse(readFileSync(join(dataDir, "node.json"), "utf8"));
      expect(stored).toMatchObject({ id: 7, clusterId: "from-env" });
    } finally {
      child.kill("SIGTERM");
      expect(await exitWithin(exited, 15_000), stderr).toBe(0);
    }
    // --log-level warn from the flag, not debug from the file: no info lines at all.
    const levels = stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => (JSON.parse(l) as { level: string }).level);
    expect(levels).not.toContain("info");
    expect(levels).not.toContain("debug");
  });

  it("refuses an unknown setting, a bad value and a missing file as usage errors", async () => {
    const unknown = await cli([
      "node",
      "start",
      "--config",
      configFile("unknown.json", { dataDir: root, electionTimeout: 5 }),
    ]);
    expect(unknown.status).toBe(64);
    expect(unknown.stderr).toContain('unknown setting "electionTimeout"');

    const bad = await cli([
      "node",
      "start",
      "--config",
      configFile("bad.json", { dataDir: root, peerListen: "nowhere" }),
    ]);
    expect(bad.status).toBe(64);
    expect(bad.stderr).toContain('"peerListen"');

    const missing = await cli(["node", "start", "--config", join(root, "absent.json")]);
    expect(missing.status).toBe(64);
    expect(missing.stderr).toContain("cannot read the config file");

    const noDir = await cli(["node", "start"]);
    expect(noDir.status).toBe(64);
    expect(noDir.stderr).toContain("--data-dir is required");

    const ticks = await cli(["node", "start", "--data-dir", root, "--election-ticks", "2"]);
    expect(ticks.status).toBe(64);
    expect(ticks.stderr).toContain("--election-ticks must be at least 3");

    const heartbeat = await cli(["node", "start", "--data-dir", root, "--heartbeat-ticks", "10"]);
    expect(heartbeat.status).toBe(64);
    expect(heartbeat.stderr).toContain(
      "--heartbeat-ticks (10) must be fewer than --election-ticks (10)",
    );
  });

  it("heartbeats every 4 ticks by default, fewer when the election timeout is short", () => {
    expect(defaultHeartbeatTicks(10)).toBe(4);
    expect(defaultHeartbeatTicks(20)).toBe(4);
    expect(defaultHeartbeatTicks(5)).toBe(2);
    expect(defaultHeartbeatTicks(3)).toBe(1);
  });
});
