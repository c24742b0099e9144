/**
 * The directory of the node's certificate for QEMU (`qemu-tls-dir.ts`): the five files QEMU
 * reads, the node's pair as both server and client, private (0700, 0600) even where an earlier
 * directory or file was wider, and rewritten whole at each start.
 */
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QEMU_TLS_FILES, writeQemuTlsDir } from "../../../src/orchestrator/drivers/qemu-tls-dir.js";
import { makeTempDir } from "./helpers.js";

let temp: { dir: string; remove: () => void };
beforeAll(() => (temp = makeTempDir("qemu-tls")));
afterAll(() => temp.remove());

const material = { ca: "CA PEM\n", cert: "NODE CERT PEM\n", key: "NODE KEY PEM\n" };

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

describe("writeQemuTlsDir", () => {
  it("writes QEMU's five files from the node's CA, certificate and key, private", () => {
    const dir = join(temp.dir, "fresh", "migration-tls");
    writeQemuTlsDir(dir, material);
    expect(readdirSync(dir).sort()).toEqual(Object.values(QEMU_TLS_FILES).sort());
    const read = (name: string) => readFileSync(join(dir, name), "utf8");
    expect(read("ca-cert.pem")).toBe(material.ca);
    expect(read("server-cert.pem")).toBe(material.cert);
    expect(read("client-cert.pem")).toBe(material.cert);
    expect(read("server-key.pem")).toBe(material.key);
    expect(read("client-key.pem")).toBe(material.key);
    expect(mode(dir)).toBe(0o700);
    for (const name of readdirSync(dir)) expect(mode(join(dir, name))).toBe(0o600);
  });

  it("replaces what an earlier start wrote, and narrows a directory or file left wider", () => {
    const dir = join(temp.dir, "again");
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "server-key.pem"), "OLD KEY\n", { mode: 0o644 });
    writeQemuTlsDir(dir, { ...material, key: "RENEWED KEY\n" });
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, "server-key.pem"))).toBe(0o600);
    expect(readFileSync(join(dir, "server-key.pem"), "utf8")).toBe("RENEWED KEY\n");
    expect(readdirSync(dir).filter((name) => name.endsWith(".new"))).toEqual([]);
  });
});
