/**
 * The QMP conversations of a live migration with a disk (`qemu-migration.ts`,
 * `qemu-disk-migration.ts`) against a scripted monitor: the source mirrors the disk and lets the
 * memory stream switch over only after the mirror finished, once; a failed copy cancels
 * everything and never starts the memory stream; the target serves its disk and resumes its
 * guest only after closing the export. The real thing runs in test/cluster/vm-migration.test.ts.
 */
import { describe, expect, it } from "vitest";
import { UnavailableError } from "../../../src/common/errors.js";
import { DISK_NODE_NAME } from "../../../src/orchestrator/drivers/qemu-args.js";
import {
  closeDiskExport,
  exportDiskForMigration,
} from "../../../src/orchestrator/drivers/qemu-disk-migration.js";
import {
  awaitIncomingRun,
  sendMigration,
} from "../../../src/orchestrator/drivers/qemu-migration.js";
import { InstantClock, scriptedQmp, sequence } from "./scripted-qmp.js";

/** The mirror job's id, as the source named it in `blockdev-mirror`. */
function mirrorId(calls: ReturnType<typeof scriptedQmp>["calls"]): unknown {
  return calls.find((c) => c.command === "blockdev-mirror")?.args?.["job-id"];
}

describe("sendMigration with a disk", () => {
  it("mirrors the disk, finishes it while paused before the switch-over, and continues once", async () => {
    let jobStatus = "running";
    let jobAtMigrate = "";
    const { qmp, calls, names } = scriptedQmp({
      "query-jobs": () => {
        const status = jobStatus;
        if (jobStatus === "running") jobStatus = "ready";
        return [{ id: mirrorId(calls), status }];
      },
      "block-job-cancel": () => (jobStatus = "concluded"),
      migrate: () => (jobAtMigrate = jobStatus),
      // Still pre-switchover for a moment after the continue (as QEMU's status can be).
      "query-migrate": sequence(
        { status: "active" },
        { status: "pre-switchover" },
        { status: "pre-switchover" },
        { status: "completed", downtime: 40, "total-time": 900, ram: { transferred: 1234 } },
      ),
    });
    const stats = await sendMigration(qmp, new InstantClock(), {
      uri: "tcp:10.0.0.2:4444",
      timeoutMs: 60_000,
      diskUri: "nbd:10.0.0.2:4445",
    });
    expect(stats).toEqual({ downtimeMs: 40, totalMs: 900, transferredBytes: 1234 });
    const added = calls.find((c) => c.command === "blockdev-add")?.args;
    expect(added).toMatchObject({
      driver: "nbd",
      server: { type: "inet", host: "10.0.0.2", port: "4445" },
      export: "disk0",
    });
    expect(calls.find((c) => c.command === "blockdev-mirror")?.args).toMatchObject({
      device: DISK_NODE_NAME,
      target: added?.["node-name"],
      sync: "top",
    });
    expect(calls.find((c) => c.command === "migrate-set-capabilities")?.args).toEqual({
      capabilities: [{ capability: "pause-before-switchover", state: true }],
    });
    const order = names();
    // The memory stream starts once the copy caught up, and switches over after it finished.
    expect(jobAtMigrate).toBe("ready");
    expect(order.indexOf("block-job-cancel")).toBeLessThan(order.indexOf("migrate-continue"));
    expect(order.filter((c) => c === "migrate-continue")).toHaveLength(1);
    expect(calls.find((c) => c.command === "block-job-cancel")?.args).not.toHaveProperty("force");
    expect(order).not.toContain("migrate_cancel");
  });

  it("gives up before the memory stream when the copy fails, leaving nothing behind", async () => {
    const { qmp, calls, names } = scriptedQmp({
      "query-jobs": () => [
        { id: mirrorId(calls), status: "concluded", error: "Connection reset by peer" },
      ],
    });
    const failure = sendMigration(qmp, new InstantClock(), {
      uri: "tcp:h:1",
      timeoutMs: 60_000,
      diskUri: "nbd:h:2",
    });
    await expect(failure).rejects.toThrow(UnavailableError);
    await expect(failure).rejects.toThrow(/Connection reset by peer/);
    const order = names();
    expect(order).not.toContain("migrate");
    expect(order).toContain("job-dismiss");
    expect(order.at(-1)).toBe("blockdev-del");
  });

  it("cancels the stream and the copy when the migration fails after the mirror was ready", async () => {
    let jobStatus = "ready";
    const { qmp, calls, names } = scriptedQmp({
      "query-jobs": () => [{ id: mirrorId(calls), status: jobStatus }],
      "block-job-cancel": () => (jobStatus = "concluded"),
      "query-migrate": () => ({ status: "failed", "error-desc": "target went away" }),
    });
    await expect(
      sendMigration(qmp, new InstantClock(), {
        uri: "tcp:h:1",
        timeoutMs: 60_000,
        diskUri: "nbd:h:2",
      }),
    ).rejects.toThrow(/failed: target went away/);
    const order = names();
    expect(order).toContain("migrate_cancel");
    expect(order.indexOf("block-job-cancel")).toBeGreaterThan(order.indexOf("migrate_cancel"));
    expect(order).toContain("blockdev-del");
  });

  it("without a disk, neither mirrors nor pauses before the switch-over", async () => {
    const { qmp, calls, names } = scriptedQmp({
      "query-migrate": () => ({ status: "completed", downtime: 1, "total-time": 2 }),
    });
    await sendMigration(qmp, new InstantClock(), { uri: "tcp:h:1", timeoutMs: 60_000 });
    expect(names()).not.toContain("blockdev-mirror");
    expect(calls.find((c) => c.command === "migrate-set-capabilities")?.args).toEqual({
      capabilities: [{ capability: "pause-before-switchover", state: false }],
    });
  });

  it("refuses a disk address that is not nbd:HOST:PORT before touching QEMU", async () => {
    const { qmp, names } = scriptedQmp({});
    await expect(
      sendMigration(qmp, new InstantClock(), {
        uri: "tcp:h:1",
        timeoutMs: 60_000,
        diskUri: "file:/etc/passwd",
      }),
    ).rejects.toThrow(/not nbd:HOST:PORT/);
    expect(names()).toEqual([]);
  });
});

describe("the target of a migration with a disk", () => {
  it("serves its disk writable over NBD on a port of the host and says where", async () => {
    const { qmp, calls } = scriptedQmp({});
    const uri = await exportDiskForMigration(qmp, "127.0.0.1");
    const started = calls.find((c) => c.command === "nbd-server-start")?.args;
    const port = (started?.["addr"] as { data: { port: string } }).data.port;
    expect(uri).toBe(`nbd:127.0.0.1:${port}`);
    expect(calls.find((c) => c.command === "block-export-add")?.args).toEqual({
      type: "nbd",
      id: "migration-export",
      "node-name": DISK_NODE_NAME,
      name: "disk0",
      writable: true,
    });
  });

  it("tries another port when QEMU cannot bind one", async () => {
    let refusals = 2;
    const { qmp, names } = scriptedQmp({
      "nbd-server-start": () => {
        if (refusals-- > 0) throw new UnavailableError("Address already in use");
        return {};
      },
    });
    expect(await exportDiskForMigration(qmp, "127.0.0.1")).toMatch(/^nbd:127\.0\.0\.1:\d+$/);
    expect(names().filter((c) => c === "nbd-server-start")).toHaveLength(3);
  });

  it("closes the export before it resumes the guest paused after the stream", async () => {
    const { qmp, names } = scriptedQmp({
      "query-status": sequence(
        { status: "inmigrate" },
        { status: "paused" },
        { status: "running" },
      ),
    });
    await awaitIncomingRun(qmp, new InstantClock(), 60_000, new Promise(() => undefined), () =>
      closeDiskExport(qmp),
    );
    const order = names();
    expect(order.indexOf("nbd-server-stop")).toBeGreaterThan(-1);
    expect(order.indexOf("nbd-server-stop")).toBeLessThan(order.indexOf("cont"));
    expect(order.filter((c) => c === "cont")).toHaveLength(1);
  });
});
