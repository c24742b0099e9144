/**
 * What each end of a live migration asks of QEMU with TLS on and off (`qemu-migration-tls.ts`
 * with `qemu-migration.ts` and `qemu-disk-migration.ts`) against a scripted monitor: the target
 * holds the memory stream and the NBD server to its server creds and the node-only authz; the
 * source names the target node for both; without TLS no TLS argument is sent; a file QEMU cannot
 * load, or a target that is not the node named, fails with a typed error that says what to do.
 * Real QEMUs in qemu-migration-tls.test.ts.
 */
import { describe, expect, it } from "vitest";
import { UnavailableError } from "../../../src/common/errors.js";
import { QmpCommandError } from "../../../src/orchestrator/drivers/qmp.js";
import { exportDiskForMigration } from "../../../src/orchestrator/drivers/qemu-disk-migration.js";
import {
  addClientTls,
  addServerTls,
  nodeSubjectPattern,
  removeTlsObjects,
} from "../../../src/orchestrator/drivers/qemu-migration-tls.js";
import {
  listenForMigration,
  sendMigration,
} from "../../../src/orchestrator/drivers/qemu-migration.js";
import { InstantClock, scriptedQmp } from "./scripted-qmp.js";

const TLS = { dir: "/var/lib/blixard/orchestrator/migration-tls", clusterId: "prod" };
const LISTENING = { "socket-address": [{ type: "inet", host: "10.0.0.2", port: "4444" }] };

function argsOf(calls: ReturnType<typeof scriptedQmp>["calls"], command: string) {
  return calls.filter((c) => c.command === command).map((c) => c.args);
}

describe("the target's QMP", () => {
  it("with TLS: server creds and the node-only authz, set before it listens, for memory and disk", async () => {
    const { qmp, calls, names } = scriptedQmp({ "query-migrate": () => LISTENING });
    const server = await addServerTls(qmp, TLS);
    expect(await listenForMigration(qmp, "10.0.0.2", server)).toBe("tcp:10.0.0.2:4444");
    await exportDiskForMigration(qmp, "127.0.0.1", server);
    expect(argsOf(calls, "object-add")).toEqual([
      {
        "qom-type": "tls-creds-x509",
        id: server.creds,
        dir: TLS.dir,
        endpoint: "server",
        "verify-peer": true,
      },
      {
        "qom-type": "authz-list",
        id: server.authz,
        policy: "deny",
        rules: [{ match: "CN=node-*.prod.blixard,O=blixard", policy: "allow", format: "glob" }],
      },
    ]);
    expect(argsOf(calls, "migrate-set-parameters")).toEqual([
      { "tls-creds": server.creds, "tls-authz": server.authz },
    ]);
    const order = names();
    expect(order.indexOf("migrate-set-parameters")).toBeLessThan(order.indexOf("migrate-incoming"));
    expect(argsOf(calls, "nbd-server-start")[0]).toMatchObject({
      "tls-creds": server.creds,
      "tls-authz": server.authz,
    });
  });

  it("with TLS and the source node known: admits that node's certificate only", async () => {
    const { qmp, calls } = scriptedQmp({});
    const server = await addServerTls(qmp, { ...TLS, sourceNodeId: 4 });
    expect(argsOf(calls, "object-add")[1]).toEqual({
      "qom-type": "authz-list",
      id: server.authz,
      policy: "deny",
      rules: [{ match: "CN=node-4.prod.blixard,O=blixard", policy: "allow", format: "exact" }],
    });
  });

  it("without TLS: plain TCP, no TLS parameter at all", async () => {
    const { qmp, calls, names } = scriptedQmp({ "query-migrate": () => LISTENING });
    await listenForMigration(qmp, "10.0.0.2");
    await exportDiskForMigration(qmp, "127.0.0.1");
    expect(names()).not.toContain("object-add");
    expect(names()).not.toContain("migrate-set-parameters");
    expect(argsOf(calls, "nbd-server-start")[0]).not.toHaveProperty("tls-creds");
  });

  it("the authz pattern matches node subjects of its cluster only", () => {
    // A glob as QEMU's authz-list applies it (fnmatch without flags): `*` matches anything.
    const glob = new RegExp(
      `^${nodeSubjectPattern("prod")
        .replace(/[.+?^${}()|[\]\\]/g, "\\$&")
        .replace("*", ".*")}$`,
    );
    expect(glob.test("CN=node-3.prod.blixard,O=blixard")).toBe(true);
    expect(glob.test("CN=node-3.staging.blixard,O=blixard")).toBe(false);
    // Client certificates of the same CA carry an OU, whatever their name.
    expect(glob.test("CN=node-3.prod.blixard,OU=prod,O=blixard")).toBe(false);
    expect(glob.test("CN=ops,OU=prod,O=blixard")).toBe(false);
  });
});

describe("the source's QMP", () => {
  it("with TLS: client creds, and the target node's name for the memory stream and the disk", async () => {
    let jobStatus = "ready";
    const { qmp, calls } = scriptedQmp({
      "query-jobs": () => [
        {
          id: calls.find((c) => c.command === "blockdev-mirror")?.args?.["job-id"],
          status: jobStatus,
        },
      ],
      "block-job-cancel": () => (jobStatus = "concluded"),
      "query-migrate": () => ({ status: "completed" }),
    });
    const tls = await addClientTls(qmp, TLS, 3);
    expect(tls.hostname).toBe("node-3.prod.blixard");
    await sendMigration(qmp, new InstantClock(), {
      uri: "tcp:10.0.0.3:4444",
      diskUri: "nbd:10.0.0.3:4445",
      timeoutMs: 60_000,
      tls,
    });
    expect(argsOf(calls, "object-add")).toEqual([
      {
        "qom-type": "tls-creds-x509",
        id: tls.creds,
        dir: TLS.dir,
        endpoint: "client",
        "verify-peer": true,
      },
    ]);
    expect(argsOf(calls, "blockdev-add")[0]).toMatchObject({
      driver: "nbd",
      "tls-creds": tls.creds,
      "tls-hostname": "node-3.prod.blixard",
    });
    expect(argsOf(calls, "migrate-set-parameters")[0]).toMatchObject({
      "tls-creds": tls.creds,
      "tls-hostname": "node-3.prod.blixard",
    });
    await removeTlsObjects(qmp, [tls.creds]);
    expect(argsOf(calls, "object-del")).toEqual([{ id: tls.creds }]);
  });

  it("without TLS: no TLS argument in blockdev-add or the migration parameters", async () => {
    const { qmp, calls } = scriptedQmp({
      "query-jobs": () => [
        {
          id: calls.find((c) => c.command === "blockdev-mirror")?.args?.["job-id"],
          status: "ready",
        },
      ],
      "query-migrate": () => ({ status: "completed" }),
    });
    await sendMigration(qmp, new InstantClock(), {
      uri: "tcp:10.0.0.3:4444",
      diskUri: "nbd:10.0.0.3:4445",
      timeoutMs: 60_000,
    });
    for (const command of ["blockdev-add", "migrate-set-parameters"]) {
      expect(argsOf(calls, command)[0]).not.toHaveProperty("tls-creds");
      expect(argsOf(calls, command)[0]).not.toHaveProperty("tls-hostname");
    }
  });

  it("a target that does not prove it is the node named fails the disk copy, saying whom it expected", async () => {
    const { qmp, names } = scriptedQmp({
      "blockdev-add": () => {
        throw new QmpCommandError(
          "blockdev-add",
          "GenericError",
          "Certificate does not match the hostname node-3.prod.blixard",
        );
      },
    });
    const tls = await addClientTls(qmp, TLS, 3);
    const failure = sendMigration(qmp, new InstantClock(), {
      uri: "tcp:10.0.0.9:4444",
      diskUri: "nbd:10.0.0.9:4445",
      timeoutMs: 60_000,
      tls,
    });
    await expect(failure).rejects.toThrow(UnavailableError);
    await expect(failure).rejects.toThrow(
      /disk export nbd:10\.0\.0\.9:4445 over TLS \(it must prove it is node-3\.prod\.blixard\).*does not match/,
    );
    expect(names()).not.toContain("migrate");
  });
});

describe("TLS files QEMU cannot load", () => {
  it("fail with the directory, QEMU's reason and what to do", async () => {
    const { qmp } = scriptedQmp({
      "object-add": () => {
        throw new QmpCommandError(
          "object-add",
          "GenericError",
          `Unable to import server certificate ${TLS.dir}/server-cert.pem`,
        );
      },
    });
    const failure = addServerTls(qmp, TLS);
    await expect(failure).rejects.toThrow(UnavailableError);
    await expect(failure).rejects.toThrow(`from ${TLS.dir}`);
    await expect(failure).rejects.toThrow(/server-cert\.pem/);
    await expect(failure).rejects.toThrow(/blixard tls issue --node/);
    await expect(addClientTls(qmp, TLS, 2)).rejects.toThrow(UnavailableError);
  });
});
