/**
 * A worker's drivers and the node's certificate for QEMU's live migrations
 * (`cli/node/local-drivers.ts`): with TLS its CA, certificate and key are written for QEMU under
 * `<dataDir>/orchestrator/migration-tls/`, private, at each start; a start under `--insecure`
 * removes that copy of the key.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLocalDrivers } from "../../../src/cli/node/local-drivers.js";
import { JsonLogger } from "../../../src/cli/log.js";
import type { VmSettings } from "../../../src/cli/node/vm-settings.js";
import type { DetectedHost } from "../../../src/orchestrator/host/index.js";
import { makeTempDir, realClock } from "../../orchestrator/drivers/helpers.js";

let temp: { dir: string; remove: () => void };
beforeAll(() => (temp = makeTempDir("local-drivers")));
afterAll(() => temp.remove());

/** What `openLocalDrivers` reads of the host: its features and whether KVM boots a guest. */
const host = { features: [], probe: { kvm: false } } as unknown as DetectedHost;

async function open(dataDir: string, vm: VmSettings): Promise<void> {
  const drivers = await openLocalDrivers({
    nodeId: 1,
    dataDir,
    clock: realClock,
    host,
    workloads: { rawExec: false },
    vm,
    log: new JsonLogger("error", {}, () => undefined),
  });
  await drivers.close();
}

describe("openLocalDrivers and the migration TLS directory", () => {
  it("writes the node's certificate for QEMU with TLS, and removes it under --insecure", async () => {
    const dataDir = join(temp.dir, "node");
    const dir = join(dataDir, "orchestrator", "migration-tls");
    const tls = { ca: "CA\n", cert: "CERT\n", key: "KEY\n", clusterId: "prod" };
    await open(dataDir, { readyTimeoutMs: 0, migrationTls: tls });
    expect(readFileSync(join(dir, "ca-cert.pem"), "utf8")).toBe("CA\n");
    expect(readFileSync(join(dir, "server-cert.pem"), "utf8")).toBe("CERT\n");
    expect(readFileSync(join(dir, "client-key.pem"), "utf8")).toBe("KEY\n");
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    // A renewed certificate reaches QEMU with the next start.
    await open(dataDir, { readyTimeoutMs: 0, migrationTls: { ...tls, cert: "RENEWED\n" } });
    expect(readFileSync(join(dir, "server-cert.pem"), "utf8")).toBe("RENEWED\n");
    await open(dataDir, { readyTimeoutMs: 0 });
    expect(existsSync(dir)).toBe(false);
  });
});
