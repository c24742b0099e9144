import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectHost } from "./index.js";
import { diskGbAvailable, findOnPath, kvmUsable, probeHost } from "./probe.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "bx-host-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("probing this host", () => {
  it("measures CPU, memory and the data directory's disk, even before it exists", async () => {
    const measured = await probeHost({ dataDir: join(dir, "not", "yet"), pathEnv: "" });
    expect(measured.cpuMillis).toBe(availableParallelism() * 1000);
    expect(measured.memoryMb).toBe(Math.floor(totalmem() / 2 ** 20));
    expect(Number.isInteger(measured.diskGb)).toBe(true);
    expect(measured.diskGb).toBeGreaterThanOrEqual(0);
    expect(measured.diskGb).toBe(await diskGbAvailable(dir));
    // An empty PATH has no QEMU.
    expect(measured.qemuPath).toBeNull();
  });

  it("finds an executable on PATH and skips directories and non-executable files", async () => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(join(a, "tool"), "not executable");
    chmodSync(join(a, "tool"), 0o644);
    mkdirSync(join(a, "dir-tool"));
    writeFileSync(join(b, "tool"), "#!/bin/sh\n");
    chmodSync(join(b, "tool"), 0o755);
    expect(await findOnPath("tool", `${a}::${b}`)).toBe(join(b, "tool"));
    expect(await findOnPath("dir-tool", a)).toBeNull();
    expect(await findOnPath("missing", `${a}:${b}`)).toBeNull();
    expect(await findOnPath(join(b, "tool"), "")).toBe(join(b, "tool"));
  });

  it("sees KVM only in a character device it may read and write", async () => {
    const file = join(dir, "kvm-file");
    writeFileSync(file, "");
    expect(await kvmUsable(file)).toBe(false);
    expect(await kvmUsable(join(dir, "no-kvm"))).toBe(false);
    // /dev/null is a character device anyone may read and write: it stands in for /dev/kvm.
    expect(await kvmUsable("/dev/null")).toBe(true);
  });

  it("detects features and applies overrides in one call", async () => {
    const qemuDir = join(dir, "bin");
    mkdirSync(qemuDir);
    writeFileSync(join(qemuDir, "qemu-system-x86_64"), "#!/bin/sh\n");
    chmodSync(join(qemuDir, "qemu-system-x86_64"), 0o755);
    const host = await detectHost({
      dataDir: dir,
      kvmDevice: "/dev/null",
      pathEnv: qemuDir,
      overrides: { cpu: "1", features: "ssd,-kvm" },
    });
    expect(host.capacity.cpuMillis).toBe(1_000);
    expect(host.features).toEqual(["qemu", "ssd"]);
    // A usable device proves nothing without a guest that booted under it.
    expect(host.probe).toMatchObject({
      kvm: false,
      kvmReason: expect.stringMatching(/no guest to boot under KVM/),
      qemuPath: join(qemuDir, "qemu-system-x86_64"),
    });
  });

  it("advertises KVM only when the guest announced readiness under it", async () => {
    const qemuDir = join(dir, "bin-ready");
    mkdirSync(qemuDir);
    // A stand-in QEMU whose "guest" prints the readiness line with the nonce it was given.
    const fake = join(qemuDir, "qemu-system-x86_64");
    writeFileSync(
      fake,
      '#!/bin/sh\nfor a in "$@"; do case "$a" in *blixard.nonce=*) n="${a##*blixard.nonce=}";; esac; done\necho "BLIXARD-READY $n"\nsleep 30\n',
    );
    chmodSync(fake, 0o755);
    const guest = { kernel: "/k", initrd: "/i" };
    const ready = await probeHost({
      dataDir: dir,
      kvmDevice: "/dev/null",
      pathEnv: qemuDir,
      guest,
    });
    expect(ready).toMatchObject({
      kvm: true,
      kvmReason: expect.stringMatching(/booted under KVM/),
    });
    // One that exits without a word (KVM refused) is not KVM.
    writeFileSync(fake, "#!/bin/sh\necho 'failed to initialize kvm' >&2\nexit 1\n");
    const refused = await probeHost({
      dataDir: dir,
      kvmDevice: "/dev/null",
      pathEnv: qemuDir,
      guest,
    });
    expect(refused).toMatchObject({
      kvm: false,
      kvmReason: expect.stringMatching(/exited \(code 1\).*failed to initialize kvm/),
    });
  });

  it("fails on a malformed override before measuring anything", async () => {
    await expect(
      detectHost({ dataDir: join(dir, "x"), overrides: { memory: "lots" } }),
    ).rejects.toThrow(/is not a memory size/);
  });
});
