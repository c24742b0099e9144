/**
 * Live migration over QMP, both ends (the qemu driver runs them; the model decides, see
 * `statemachine/orchestrator/vm-migration.ts`).
 *
 * - **Target.** QEMU starts with `-incoming defer` and the same machine as the source;
 *   {@link listenForMigration} has it listen (`migrate-incoming tcp:HOST:0`, the kernel picks the
 *   port, read back from `query-migrate`); {@link awaitIncomingRun} waits until the guest runs
 *   after the stream (QEMU resumes it by itself). A broken stream makes QEMU exit.
 * - **Source.** {@link sendMigration} sets a downtime limit and a bandwidth cap that do not throttle
 *   a local link, runs `migrate` and polls `query-migrate` until it completed (the guest is then
 *   paused here: `postmigrate`), failed, or timed out (then `migrate_cancel`: the guest runs on).
 *   {@link resumeAfterMigration} runs a paused guest again when the target did not take it.
 *
 * A VM's own disk (overlay or data disk) moves too: mirrored over NBD beside the memory stream,
 * finished while the guest is paused before the switch-over (see `qemu-disk-migration.ts`).
 * Both go over mutual TLS with the nodes' certificates when the node runs with TLS (see
 * `qemu-migration-tls.ts`); under `--insecure` they are plain TCP.
 */
import type { Clock } from "../../common/clock.js";
import { TimeoutError, UnavailableError } from "../../common/errors.js";
import { startDiskMirror, type DiskMirror } from "./qemu-disk-migration.js";
import type { ClientTls, ServerTls } from "./qemu-migration-tls.js";
import type { QmpClient } from "./qmp.js";
import { delay } from "./timing.js";
import type { MigrationStats } from "./vm-driver.js";

/** The longest pause of the guest QEMU aims for in the last pass, in ms. */
const MIGRATION_DOWNTIME_LIMIT_MS = 300;
/** The stream's bandwidth cap (QEMU's default, 32 MiB/s, would make a 128 MB guest take seconds). */
const MIGRATION_MAX_BANDWIDTH_BYTES = 1024 * 1024 * 1024;
/** Between two `query-migrate` / `query-status` polls. */
const MIGRATION_POLL_MS = 50;

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
}

/**
 * Has a QEMU started with `-incoming defer` listen on `host` (a port the kernel picks) and returns
 * the URI for the source: `tcp:HOST:PORT`. With `tls` (see `qemu-migration-tls.ts`) the stream
 * is TLS and only the node its authz admits may send it.
 * @throws UnavailableError when QEMU does not say which port it listens on; QMP's errors.
 */
export async function listenForMigration(
  qmp: QmpClient,
  host: string,
  tls?: ServerTls,
): Promise<string> {
  const bracketed = host.includes(":") ? `[${host}]` : host;
  if (tls !== undefined) {
    // Set before it listens: the first connection is already held to TLS.
    await qmp.execute("migrate-set-parameters", {
      "tls-creds": tls.creds,
      "tls-authz": tls.authz,
    });
  }
  await qmp.execute("migrate-incoming", { uri: `tcp:${bracketed}:0` });
  const info = record(await qmp.execute("query-migrate"));
  const addresses = Array.isArray(info["socket-address"]) ? info["socket-address"] : [];
  const port = Number(record(addresses[0])["port"]);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new UnavailableError(
      `QEMU did not say where it listens for the migration (query-migrate: ${JSON.stringify(info)})`,
    );
  }
  return `tcp:${bracketed}:${port}`;
}

/**
 * Resolves once the incoming guest runs (`query-status` says `running`); rejects with a
 * `TimeoutError` after `timeoutMs`, or an `UnavailableError` when `ended` settles first (QEMU
 * exited: the stream broke). A QEMU started with `-S` (a VM with a disk) waits paused after the
 * stream: `beforeResume` runs then (it closes the disk's export), and the guest is resumed.
 */
export async function awaitIncomingRun(
  qmp: QmpClient,
  clock: Clock,
  timeoutMs: number,
  ended: Promise<unknown>,
  beforeResume?: () => Promise<void>,
): Promise<void> {
  let over = false;
  void ended.then(() => (over = true));
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    if (over) throw new UnavailableError("QEMU ended before the migration completed");
    try {
      const status = record(await qmp.execute("query-status"))["status"];
      if (status === "running") return;
      if (status === "paused" && beforeResume !== undefined) {
        await beforeResume();
        await qmp.execute("cont");
        continue;
      }
    } catch (error) {
      if (over) throw new UnavailableError("QEMU ended before the migration completed");
      throw error;
    }
    if (clock.now() >= deadline) {
      throw new TimeoutError(
        `no migration stream completed within ${timeoutMs} ms (the source never sent it, or too slowly)`,
      );
    }
    await delay(clock, MIGRATION_POLL_MS);
  }
}

/** Where {@link sendMigration} sends a guest, and how. */
export interface MigrationSend {
  /** The target's `incomingUri`: `tcp:HOST:PORT`. */
  readonly uri: string;
  /** The target's NBD export for the VM's disk (`nbd:HOST:PORT`); absent: no disk moves. */
  readonly diskUri?: string;
  /** Gives up (cancelling) after this long, in ms. */
  readonly timeoutMs: number;
  /** The stream and the disk go over TLS to the target this names; absent: plain TCP. */
  readonly tls?: ClientTls;
}

/**
 * Sends the running guest to `to.uri` and waits for the end of the stream; with `to.diskUri` (the
 * target's NBD export) its disk too, mirrored first and finished before the switch-over.
 * @throws UnavailableError when QEMU reports the migration or the disk copy failed or cancelled;
 *   TimeoutError after `timeoutMs`. Either way the migration is cancelled first, so the guest
 *   runs on here.
 */
export async function sendMigration(
  qmp: QmpClient,
  clock: Clock,
  to: MigrationSend,
): Promise<MigrationStats> {
  const { uri, diskUri, timeoutMs, tls } = to;
  const deadline = clock.now() + timeoutMs;
  let mirror: DiskMirror | undefined;
  let migrating = false;
  let continued = false;
  try {
    if (diskUri !== undefined) {
      mirror = await startDiskMirror(qmp, clock, { diskUri, deadline, ...(tls ? { tls } : {}) });
    }
    await qmp.execute("migrate-set-capabilities", {
      capabilities: [{ capability: "pause-before-switchover", state: mirror !== undefined }],
    });
    await qmp.execute("migrate-set-parameters", {
      "downtime-limit": MIGRATION_DOWNTIME_LIMIT_MS,
      "max-bandwidth": MIGRATION_MAX_BANDWIDTH_BYTES,
      ...(tls === undefined ? {} : { "tls-creds": tls.creds, "tls-hostname": tls.hostname }),
    });
    await qmp.execute("migrate", { uri });
    migrating = true;
    for (;;) {
      const info = record(await qmp.execute("query-migrate"));
      const status = info["status"];
      if (status === "completed") {
        return {
          downtimeMs: Number(info["downtime"] ?? 0),
          totalMs: Number(info["total-time"] ?? 0),
          transferredBytes: Number(record(info["ram"])["transferred"] ?? 0),
        };
      }
      if (status === "failed" || status === "cancelled") {
        const why = typeof info["error-desc"] === "string" ? `: ${info["error-desc"]}` : "";
        throw new UnavailableError(`the migration to ${uri} ${status}${why}`);
      }
      if (status === "pre-switchover" && !continued) {
        // The guest is paused: the disk's last blocks go over, then the device state. Once: the
        // status may still read pre-switchover for a moment after the continue.
        await mirror?.complete(deadline);
        mirror = undefined;
        await qmp.execute("migrate-continue", { state: "pre-switchover" });
        continued = true;
        continue;
      }
      if (clock.now() >= deadline) {
        throw new TimeoutError(`the migration to ${uri} did not complete within ${timeoutMs} ms`);
      }
      await delay(clock, MIGRATION_POLL_MS);
    }
  } catch (error) {
    if (migrating) await qmp.execute("migrate_cancel").catch(() => undefined);
    await mirror?.abandon();
    throw error;
  }
}

/** Runs a guest paused by a completed migration again (`cont`); nothing if it runs. */
export async function resumeAfterMigration(qmp: QmpClient): Promise<void> {
  const status = record(await qmp.execute("query-status"));
  if (status["status"] !== "running") await qmp.execute("cont");
}
