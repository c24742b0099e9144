/**
 * A bounded fault run on real processes (see README, "Fault testing"): three nodes in network
 * namespaces, ten clients, and a fixed seed's schedule of kill -9, SIGSTOP, partitions, packet
 * loss, a full disk and a failing disk. The history must be linearizable, no acknowledged write
 * lost, every disk fault handled as promised, and the cluster must heal after every fault.
 * Needs root and the tools `.ci/run` installs; without them the test is not registered, unless
 * BLIXARD_REQUIRE_CHAOS=1 (set by `.ci/run`) makes that a failure.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { ensureBuilt } from "../cli/helpers.js";
import { isRoot, missingTools } from "./host.js";
import type { ChaosResult } from "./run.js";

const REQUIRE = process.env["BLIXARD_REQUIRE_CHAOS"] === "1";
const capable = isRoot() && missingTools().length === 0;
const MAIN = join(import.meta.dirname, "main.ts");
const SEED = 20261205;
const RUN_SECONDS = 70;

if (capable) {
  beforeAll(ensureBuilt);

  it("a seeded run of kills, pauses, partitions, loss, a full and a failing disk stays linearizable and heals", async () => {
    const dir = mkdtempSync(join(tmpdir(), "blixard-chaos-test-"));
    const json = join(dir, "result.json");
    try {
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          MAIN,
          "--seconds",
          String(RUN_SECONDS),
          "--faults",
          "kill,stop,partition,loss,disk-full,eio",
          "--seed",
          String(SEED),
          "--json",
          json,
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
      let result: ChaosResult | undefined;
      try {
        result = JSON.parse(readFileSync(json, "utf8")) as ChaosResult;
      } catch {
        // the run crashed: the output says why
      }
      if (result === undefined || !result.ok || code !== 0) console.log(output);
      expect(result).toBeDefined();
      const r = result as ChaosResult;
      expect(r.findings).toEqual([]);
      expect(r.linearizable).toBe(true);
      expect(r.lostWrites).toBe(0);
      // Not a degenerate run: real traffic and several kinds of faults, each healed.
      expect(r.operations.ok).toBeGreaterThan(100);
      expect(Object.keys(r.faultsByKind).length).toBeGreaterThanOrEqual(3);
      expect(r.heals.every((h) => h.healToReplicationMs !== undefined)).toBe(true);
      expect(code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 115_000);
} else if (REQUIRE) {
  it("the fault suite can run here (BLIXARD_REQUIRE_CHAOS=1)", () => {
    expect.fail(
      `BLIXARD_REQUIRE_CHAOS=1 but the fault suite cannot run: ${isRoot() ? "" : "not root; "}missing ${missingTools().join(", ") || "nothing"}`,
    );
  });
}
