/**
 * A VM's own disk moves with its live migration: copied over NBD while the guest runs, finished
 * while it is paused before the switch-over, so the target's disk holds every write the guest
 * made on the source before the guest runs there. (The alternative, shared storage, is not
 * something a node can assume.)
 *
 * - **Target.** Its QEMU starts with `-incoming defer -S` on a fresh disk made exactly as the
 *   source's was (the same base image and size; a stale disk of an earlier stay is discarded
 *   first). {@link exportDiskForMigration} serves that disk writable over NBD (QEMU's own
 *   `nbd-server-start` + `block-export-add`) and returns `nbd:HOST:PORT` for the source. Once the
 *   stream has completed the guest waits paused: {@link closeDiskExport} ends the NBD server,
 *   then the driver resumes the guest (`cont`), so nothing but the guest writes the disk once it
 *   runs.
 * - **Source.** {@link startDiskMirror} opens the target's export (`blockdev-add` of an NBD
 *   node) and mirrors the top layer of the VM's disk to it (`blockdev-mirror sync=top`: the base
 *   image is on both nodes already, only what the guest wrote moves). Once the job is `ready`
 *   (the copy caught up; from then on it follows the guest's writes) the memory migration starts
 *   with `pause-before-switchover`: QEMU stops the guest and waits; {@link DiskMirror.complete}
 *   then ends the job with `block-job-cancel`, which on a ready mirror first copies what is left
 *   and leaves the target consistent, and the migration goes on (`migrate-continue`).
 *   {@link DiskMirror.abandon} tears it all down when the migration fails.
 *
 * Like the memory stream, the NBD connection goes to the target node's peer address, open only
 * for the migration: over mutual TLS with the nodes' certificates (see `qemu-migration-tls.ts`),
 * or plain TCP under `--insecure`.
 */
import { createServer } from "node:net";
import type { Clock } from "../../common/clock.js";
import { TimeoutError, UnavailableError } from "../../common/errors.js";
import { DISK_NODE_NAME } from "./qemu-args.js";
import type { ClientTls, ServerTls } from "./qemu-migration-tls.js";
import type { QmpClient } from "./qmp.js";
import { delay } from "./timing.js";

/** The NBD export's name on the target. */
const EXPORT_NAME = "disk0";
/** The block export's id on the target. */
const EXPORT_ID = "migration-export";
/** Ports tried for the NBD server before giving up (another process may take a free one first). */
const PORT_ATTEMPTS = 5;
/** Between two `query-jobs` polls. */
const JOB_POLL_MS = 20;
/** How long tearing down an abandoned mirror may wait for its job to end. */
const ABANDON_WAIT_MS = 10_000;

/** `nbd:HOST:PORT`, as {@link exportDiskForMigration} writes it (the model checks the form). */
const DISK_URI = /^nbd:(\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/;

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
}

/** A TCP port on `host` that nothing listened on a moment ago. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Serves the VM's disk (node {@link DISK_NODE_NAME}) writable over NBD on `host`, for the
 * source's mirror. Returns `nbd:HOST:PORT`. With `tls` the server speaks only TLS, to the node
 * its authz admits (see `qemu-migration-tls.ts`).
 * @throws UnavailableError when no port could be bound or QEMU refuses the export.
 */
export async function exportDiskForMigration(
  qmp: QmpClient,
  host: string,
  tls?: ServerTls,
): Promise<string> {
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freePort(host);
    try {
      await qmp.execute("nbd-server-start", {
        addr: { type: "inet", data: { host, port: String(port) } },
        ...(tls === undefined ? {} : { "tls-creds": tls.creds, "tls-authz": tls.authz }),
      });
    } catch (error) {
      lastError = error;
      continue;
    }
    await qmp.execute("block-export-add", {
      type: "nbd",
      id: EXPORT_ID,
      "node-name": DISK_NODE_NAME,
      name: EXPORT_NAME,
      writable: true,
    });
    return `nbd:${host.includes(":") ? `[${host}]` : host}:${port}`;
  }
  throw new UnavailableError(
    `QEMU could not serve the disk for the migration on ${host}: ${(lastError as Error).message}`,
    { cause: lastError },
  );
}

/** Ends the target's NBD server and its export (the source's connection with it). */
export async function closeDiskExport(qmp: QmpClient): Promise<void> {
  await qmp.execute("nbd-server-stop");
}

/** The source's copy of its disk to the target, under way (see the module comment). */
export interface DiskMirror {
  /**
   * With the guest paused: ends the job once the target has every block.
   * @throws UnavailableError when the job failed (the target's disk is incomplete);
   *   TimeoutError at `deadline` (clock time).
   */
  complete(deadline: number): Promise<void>;
  /** Cancels the copy and closes the connection, whatever state it is in. Throws nothing. */
  abandon(): Promise<void>;
}

/** A job's `query-jobs` entry, or undefined once it is gone. */
async function jobEntry(qmp: QmpClient, id: string): Promise<Record<string, unknown> | undefined> {
  const jobs = await qmp.execute("query-jobs");
  return (Array.isArray(jobs) ? jobs : []).map(record).find((job) => job["id"] === id);
}

/**
 * Waits until job `id` is in one of `statuses`; a job that concluded (or vanished) first is an
 * error unless `concluded` is among them.
 */
async function awaitJob(
  qmp: QmpClient,
  clock: Clock,
  id: string,
  statuses: readonly string[],
  deadline: number,
  what: string,
): Promise<Record<string, unknown>> {
  for (;;) {
    const job = await jobEntry(qmp, id);
    const status = typeof job?.["status"] === "string" ? job["status"] : "gone";
    if (job !== undefined && statuses.includes(status)) return job;
    if (status === "concluded" || status === "gone" || status === "aborting") {
      const why = typeof job?.["error"] === "string" ? `: ${job["error"]}` : "";
      throw new UnavailableError(`copying the disk to the target failed (${status})${why}`);
    }
    if (clock.now() >= deadline) {
      throw new TimeoutError(`the disk copy to the target was not ${what} in time (${status})`);
    }
    await delay(clock, JOB_POLL_MS);
  }
}

/** Parses `nbd:HOST:PORT`. @throws UnavailableError for anything else. */
function parseDiskUri(diskUri: string): { host: string; port: string } {
  const match = DISK_URI.exec(diskUri);
  if (match === null) {
    throw new UnavailableError(
      `the target's disk address ${JSON.stringify(diskUri)} is not nbd:HOST:PORT`,
    );
  }
  return { host: match[2] ?? match[3] ?? "", port: match[4] ?? "" };
}

let mirrors = 0;

/** Where {@link startDiskMirror} copies the disk, and how. */
export interface DiskMirrorTarget {
  /** The target's export: `nbd:HOST:PORT`. */
  readonly diskUri: string;
  /** Clock time by which the copy must have caught up. */
  readonly deadline: number;
  /** The connection goes over TLS to the target this names; absent: plain TCP. */
  readonly tls?: ClientTls;
}

/**
 * Opens the target's export at `to.diskUri` and mirrors the VM's disk to it; resolves once the
 * copy caught up (the job is `ready`).
 * @throws UnavailableError when the target cannot be reached (or, over TLS, is not the node
 *   named) or the copy fails; TimeoutError at `to.deadline`. Nothing is left behind then.
 */
export async function startDiskMirror(
  qmp: QmpClient,
  clock: Clock,
  to: DiskMirrorTarget,
): Promise<DiskMirror> {
  const { diskUri, deadline, tls } = to;
  const { host, port } = parseDiskUri(diskUri);
  // Names of their own per attempt: a failed attempt's leftovers never block the next.
  const attempt = ++mirrors;
  const nodeName = `migration-target-${attempt}`;
  const jobId = `migration-mirror-${attempt}`;
  let added = false;
  let started = false;
  const abandon = async (): Promise<void> => {
    if (started) {
      await qmp.execute("block-job-cancel", { device: jobId, force: true }).catch(() => undefined);
      await awaitJob(
        qmp,
        clock,
        jobId,
        ["concluded"],
        clock.now() + ABANDON_WAIT_MS,
        "ended",
      ).catch(() => undefined);
      await qmp.execute("job-dismiss", { id: jobId }).catch(() => undefined);
    }
    if (added) await qmp.execute("blockdev-del", { "node-name": nodeName }).catch(() => undefined);
  };
  try {
    await qmp
      .execute("blockdev-add", {
        driver: "nbd",
        "node-name": nodeName,
        server: { type: "inet", host, port },
        export: EXPORT_NAME,
        ...(tls === undefined ? {} : { "tls-creds": tls.creds, "tls-hostname": tls.hostname }),
      })
      .catch((error: unknown) => {
        const over = tls === undefined ? "" : ` over TLS (it must prove it is ${tls.hostname})`;
        throw new UnavailableError(
          `could not open the target's disk export ${diskUri}${over}: ${(error as Error).message}`,
          { cause: error },
        );
      });
    added = true;
    await qmp.execute("blockdev-mirror", {
      "job-id": jobId,
      device: DISK_NODE_NAME,
      target: nodeName,
      sync: "top",
      // Kept once concluded, so its outcome (and error) can be read before it is dismissed.
      "auto-dismiss": false,
    });
    started = true;
    await awaitJob(qmp, clock, jobId, ["ready"], deadline, "caught up");
  } catch (error) {
    await abandon();
    throw error;
  }
  return {
    complete: async (completeDeadline) => {
      await qmp.execute("block-job-cancel", { device: jobId });
      const job = await awaitJob(qmp, clock, jobId, ["concluded"], completeDeadline, "finished");
      await qmp.execute("job-dismiss", { id: jobId }).catch(() => undefined);
      started = false;
      if (typeof job["error"] === "string") {
        throw new UnavailableError(`copying the disk to the target failed: ${job["error"]}`);
      }
      await qmp.execute("blockdev-del", { "node-name": nodeName }).catch(() => undefined);
      added = false;
    },
    abandon,
  };
}
