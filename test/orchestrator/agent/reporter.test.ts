import { describe, expect, it } from "vitest";
import { ConflictError, UnavailableError } from "../../../src/common/errors.js";
import { Reporter } from "../../../src/orchestrator/agent/reporter.js";
import type { OrchestratorCommand } from "../../../src/statemachine/orchestrator/commands.js";
import { ManualClock } from "../../node/fakes.js";

const SILENT = { debug: () => undefined, info: () => undefined, warn: () => undefined };

function drain(name: string): OrchestratorCommand {
  return { type: "deleteVm", name };
}

describe("Reporter", () => {
  it("retries a report while the cluster is unavailable, then stops", async () => {
    const clock = new ManualClock();
    const sent: string[] = [];
    let failures = 3;
    const reporter = new Reporter(
      {
        propose: async (command) => {
          sent.push((command as { name: string }).name);
          if (failures-- > 0) throw new UnavailableError("no leader");
          return { type: "deleted" };
        },
      },
      clock,
      SILENT,
    );
    reporter.report("vm:a", drain("a"));
    await clock.advance(10_000);
    expect(sent).toEqual(["a", "a", "a", "a"]);
    expect(reporter.pending("vm:a")).toBe(false);
  });

  it("drops a report the model refuses, and keeps only the newest unsent one per key", async () => {
    const clock = new ManualClock();
    const sent: string[] = [];
    let release: () => void = () => undefined;
    const reporter = new Reporter(
      {
        propose: (command) => {
          const name = (command as { name: string }).name;
          sent.push(name);
          if (name === "first") {
            return new Promise((resolve) => (release = () => resolve({ type: "deleted" })));
          }
          return Promise.reject(new ConflictError("stale"));
        },
      },
      clock,
      SILENT,
    );
    reporter.report("k", drain("first"));
    await clock.advance(0);
    reporter.report("k", drain("second"));
    reporter.report("k", drain("third"));
    release();
    await clock.advance(10_000);
    expect(sent).toEqual(["first", "third"]);
    expect(reporter.pending("k")).toBe(false);
  });
});
