/**
 * What the real-QEMU cluster tests share: whether a guest can run here, the Blixard guest built
 * into a temporary image directory, and a cluster of real processes serving it (two nodes unless
 * a test needs more).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import type { BlixardClient } from "../../src/client/index.js";
import { findOnPath } from "../../src/orchestrator/host/probe.js";
import { ensureBuilt } from "../cli/helpers.js";
import {
  buildGuest,
  guestBuildable,
  type GuestImage,
} from "../orchestrator/drivers/guest-image.js";
import { ProcessCluster, until } from "./process-cluster.js";

/** QEMU is installed and the guest can be built from the Debian packages. */
export const QEMU_AVAILABLE =
  (await findOnPath("qemu-system-x86_64", process.env["PATH"] ?? "")) !== null && guestBuildable();

/** TCG boots on a loaded 2-core machine have taken up to a minute. */
export const BOOT_DEADLINE_MS = 150_000;

/** A cluster whose nodes boot the Blixard guest, and its client. */
export interface QemuCluster {
  readonly cluster: ProcessCluster;
  readonly client: BlixardClient;
  readonly guest: GuestImage;
  /** Stops the nodes and removes the images. */
  destroy(): Promise<void>;
}

/** Options of {@link startQemuCluster}. */
export interface QemuClusterOptions {
  /** Nodes in the cluster. Default 2. */
  readonly size?: number;
  /** More `node start` flags for every node (e.g. `--worker-dead-after-ms`). */
  readonly extraArgs?: readonly string[];
}

/**
 * Builds the guest and starts the nodes serving it; resolves once `onlineWorkers` of them are
 * online workers.
 */
async function startQemuCluster(
  name: string,
  onlineWorkers: number,
  options: QemuClusterOptions = {},
): Promise<QemuCluster> {
  await ensureBuilt();
  const imageRoot = mkdtempSync(join(tmpdir(), `${name}-images-`));
  const imageDir = join(imageRoot, "images");
  const guest = buildGuest(imageDir);
  const cluster = await ProcessCluster.create({
    size: options.size ?? 2,
    name,
    extraArgs: [
      "--vm-image-dir",
      imageDir,
      "--vm-ready-timeout-ms",
      "120000",
      ...(options.extraArgs ?? []),
    ],
  });
  cluster.startAll();
  await cluster.waitForLeader();
  const client = cluster.client();
  await until(
    async () =>
      (await client.orchestrator.listWorkers()).filter((w) => w.status === "online").length >=
      onlineWorkers
        ? true
        : undefined,
    `${onlineWorkers} online worker(s)`,
    60_000,
  );
  return {
    cluster,
    client,
    guest,
    destroy: async () => {
      await cluster.destroy();
      rmSync(imageRoot, { recursive: true, force: true });
    },
  };
}

/**
 * Registers a failing test when BLIXARD_REQUIRE_QEMU=1 and no guest can run here, so a machine
 * with everything reports no skipped test and CI cannot pass without the real-QEMU tests.
 */
export function requireQemuWhenAsked(): void {
  if (QEMU_AVAILABLE || process.env["BLIXARD_REQUIRE_QEMU"] !== "1") return;
  it("QEMU, the Debian kernel and busybox-static are installed (BLIXARD_REQUIRE_QEMU=1)", () => {
    expect.fail(
      "BLIXARD_REQUIRE_QEMU=1 but the guest cannot be built or run; apt-get install -y qemu-system-x86 linux-image-cloud-amd64 busybox-static cpio",
    );
  });
}

/**
 * Registers a suite's cluster (call inside its `describe`): started before the suite's tests and
 * handed to `onStart`, destroyed after them, and the nodes' last `logLines` log lines printed
 * when a test fails.
 */
export function useQemuCluster(
  name: string,
  onlineWorkers: number,
  onStart: (qemu: QemuCluster) => void,
  options: QemuClusterOptions & { readonly logLines?: number } = {},
): void {
  let qemu: QemuCluster | undefined;
  beforeAll(async () => {
    qemu = await startQemuCluster(name, onlineWorkers, options);
    onStart(qemu);
  }, 120_000);
  afterAll(async () => {
    await qemu?.destroy();
  });
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      const logs = qemu?.cluster.logs(options.logLines ?? 120) ?? "(no cluster)";
      process.stderr.write(`node logs:\n${logs}\n`);
    });
  });
}
