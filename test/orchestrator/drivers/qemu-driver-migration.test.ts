/**
 * The qemu driver's live migrations against a fake QEMU whose migrations complete at once
 * (`fake-qemu.mjs`, mode `migrate`), reading the QMP commands it received: with the node's TLS
 * the target's QEMU gets server creds and an authz admitting the source node only before it
 * listens, and the
 * source's QEMU client creds naming the target node, removed afterwards; without TLS neither
 * end gets any, and each end warns (the node's log and the VM's) that the guest crosses the
 * network unencrypted. The QMP sequences themselves are in qemu-migration-qmp.test.ts; real
 * QEMUs in qemu-migration-tls.test.ts.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  PLAIN_MIGRATION_WARNING,
  QemuDriver,
} from "../../../src/orchestrator/drivers/qemu-driver.js";
import type { MigrationTls } from "../../../src/orchestrator/drivers/qemu-migration-tls.js";
import type { VmHandle } from "../../../src/orchestrator/drivers/vm-driver.js";
import type { VmSpec } from "../../../src/statemachine/orchestrator/types.js";
import { qemuSpec } from "../model/fixtures.js";
import { makeTempDir, readOrEmpty, realClock, waitFor, writeFakeQemu } from "./helpers.js";

const TLS: MigrationTls = { dir: "/data/orchestrator/migration-tls", clusterId: "prod" };

let temp: { dir: string; remove: () => void };
let fakeBinary: string;
let drivers = 0;
const started: VmHandle[] = [];

beforeAll(() => {
  temp = makeTempDir("qemu-mig");
  fakeBinary = writeFakeQemu(temp.dir);
  spec = { ...spec, image: join(temp.dir, "disk.img") };
  writeFileSync(spec.image, "");
});
afterEach(async () => {
  await Promise.all(started.splice(0).map((handle) => handle.stop({ graceMs: 100 })));
});
afterAll(() => temp.remove());

/** A disk-image VM (no disk of its own moves: the memory stream only); its image made at start. */
let spec: VmSpec = qemuSpec({
  kernel: "",
  memoryMb: 64,
  restart: { mode: "never", maxRestarts: 0, backoffMs: 20 },
});

/** A driver on the fake, with or without TLS; its QMP commands, its warnings and VM logs. */
function migratingDriver(tls: MigrationTls | undefined) {
  const n = ++drivers;
  const qmpLog = join(temp.dir, `qmp-${n}.jsonl`);
  const logDir = join(temp.dir, `logs-${n}`);
  const warnings: { message: string; fields: Readonly<Record<string, unknown>> }[] = [];
  const driver = new QemuDriver({
    clock: realClock,
    runDir: join(temp.dir, `run-${n}`),
    logDir,
    binary: fakeBinary,
    accel: "tcg",
    quitTimeoutMs: 300,
    baseEnv: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: temp.dir,
      FAKE_QEMU_MODE: "migrate",
      FAKE_QEMU_QMP_LOG: qmpLog,
    },
    ...(tls === undefined ? {} : { migrationTls: tls }),
    warn: (message, fields) => warnings.push({ message, fields }),
  });
  const commands = (): Sent[] =>
    readOrEmpty(qmpLog)
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as Sent);
  return {
    driver,
    commands,
    warnings,
    vmLog: (name: string) => readOrEmpty(join(logDir, `${name}.log`)),
  };
}

/** A QMP command as the fake recorded it. */
interface Sent {
  readonly execute: string;
  readonly arguments?: Record<string, unknown>;
}

function named(commands: readonly Sent[], name: string): Sent[] {
  return commands.filter((c) => c.execute === name);
}

describe("the qemu driver's migrations with the node's TLS", () => {
  it("has the target's QEMU admit only the source node before it listens", async () => {
    const { driver, commands, warnings, vmLog } = migratingDriver(TLS);
    const handle = driver.startIncoming({
      name: "in",
      spec,
      onChange: () => undefined,
      sourceNodeId: 1,
    });
    started.push(handle);
    await waitFor(() => handle.observe().status === "running", "the incoming VM to run");
    expect(handle.observe().incomingUri).toBe("tcp:127.0.0.1:4444");
    const sent = commands();
    const [creds, authz] = named(sent, "object-add").map((c) => c.arguments);
    expect(creds).toEqual({
      "qom-type": "tls-creds-x509",
      id: expect.any(String) as string,
      dir: TLS.dir,
      endpoint: "server",
      "verify-peer": true,
    });
    expect(authz).toEqual({
      "qom-type": "authz-list",
      id: expect.any(String) as string,
      policy: "deny",
      rules: [{ match: "CN=node-1.prod.blixard,O=blixard", policy: "allow", format: "exact" }],
    });
    // The VM log is written asynchronously: wait for the line, do not read at once.
    await waitFor(() => vmLog("in").includes("(TLS, from node 1)"), `the in log to say it`);
    const order = sent.map((c) => c.execute);
    expect(order.indexOf("migrate-set-parameters")).toBeLessThan(order.indexOf("migrate-incoming"));
    expect(named(sent, "migrate-set-parameters")[0]?.arguments).toEqual({
      "tls-creds": creds?.["id"],
      "tls-authz": authz?.["id"],
    });
    expect(warnings).toEqual([]);
  });

  it("has the source's QEMU send only to the target node, then removes its creds", async () => {
    const { driver, commands, warnings, vmLog } = migratingDriver(TLS);
    const handle = driver.start({ name: "out", spec, onChange: () => undefined });
    started.push(handle);
    await waitFor(() => handle.observe().status === "running", "the VM to run");
    const stats = await handle.migrate?.({ uri: "tcp:10.0.0.3:4444", nodeId: 3 });
    expect(stats).toEqual({ downtimeMs: 1, totalMs: 2, transferredBytes: 3 });
    const sent = commands();
    const creds = named(sent, "object-add")[0]?.arguments;
    expect(creds).toMatchObject({ "qom-type": "tls-creds-x509", endpoint: "client" });
    expect(named(sent, "migrate-set-parameters")[0]?.arguments).toMatchObject({
      "tls-creds": creds?.["id"],
      "tls-hostname": "node-3.prod.blixard",
    });
    expect(named(sent, "migrate")[0]?.arguments).toEqual({ uri: "tcp:10.0.0.3:4444" });
    expect(named(sent, "object-del").map((c) => c.arguments)).toEqual([{ id: creds?.["id"] }]);
    expect(warnings).toEqual([]);
    await waitFor(
      () => vmLog("out").includes("migrating to node 3 at tcp:10.0.0.3:4444 (TLS)"),
      `the out log to say it`,
    );
  });
});

describe("the qemu driver's migrations under --insecure", () => {
  it("gives neither end any TLS, and warns at each end that the guest crosses in clear", async () => {
    const { driver, commands, warnings, vmLog } = migratingDriver(undefined);
    const target = driver.startIncoming({ name: "in", spec, onChange: () => undefined });
    const source = driver.start({ name: "out", spec, onChange: () => undefined });
    started.push(target, source);
    await waitFor(() => target.observe().status === "running", "the incoming VM to run");
    await waitFor(() => source.observe().status === "running", "the VM to run");
    await source.migrate?.({ uri: "tcp:10.0.0.3:4444", nodeId: 3 });
    const sent = commands();
    expect(named(sent, "object-add")).toEqual([]);
    for (const { arguments: args } of named(sent, "migrate-set-parameters")) {
      expect(args).not.toHaveProperty("tls-creds");
      expect(args).not.toHaveProperty("tls-hostname");
    }
    expect(warnings).toEqual([
      { message: PLAIN_MIGRATION_WARNING, fields: { vm: "in", direction: "incoming" } },
      { message: PLAIN_MIGRATION_WARNING, fields: { vm: "out", direction: "outgoing" } },
    ]);
    expect(PLAIN_MIGRATION_WARNING).toMatch(/memory and disk cross the network unencrypted/);
    await waitFor(
      () => vmLog("in").includes(`WARNING: ${PLAIN_MIGRATION_WARNING}`),
      `the in log to say it`,
    );
    await waitFor(
      () => vmLog("out").includes(`WARNING: ${PLAIN_MIGRATION_WARNING}`),
      `the out log to say it`,
    );
  });
});
