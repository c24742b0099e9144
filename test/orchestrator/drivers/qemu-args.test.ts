import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../../src/common/errors.js";
import {
  buildQemuArgs,
  DEFAULT_KERNEL_CMDLINE,
  optionValue,
  type QemuLaunchConfig,
} from "../../../src/orchestrator/drivers/qemu-args.js";

const baseSpec: QemuLaunchConfig["spec"] = {
  vcpus: 2,
  memoryMb: 256,
  kernel: "/vm/vmlinuz",
  initrd: "",
  image: "",
  cmdline: "",
};

function args(
  overrides: Partial<QemuLaunchConfig> = {},
  spec: Partial<QemuLaunchConfig["spec"]> = {},
): string[] {
  return buildQemuArgs({
    name: "web1",
    spec: { ...baseSpec, ...spec },
    accel: "tcg",
    qmpSocketPath: "/run/bx/web1.qmp",
    ...overrides,
  });
}

/** The value after the first occurrence of `flag`. */
function valueOf(argv: readonly string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i < 0 ? undefined : argv[i + 1];
}

/** Every value given to `flag`. */
function valuesOf(argv: readonly string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1] as string] : []));
}

describe("buildQemuArgs", () => {
  it("builds a microvm from a kernel under TCG, with the safe defaults", () => {
    // prettier-ignore
    expect(args()).toEqual([
      "-name", "guest=web1",
      "-M", "microvm",
      "-accel", "tcg", "-cpu", "max",
      "-smp", "2",
      "-m", "256M",
      "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
      "-chardev", "stdio,id=serial0,signal=off",
      "-serial", "chardev:serial0",
      "-chardev", "socket,id=qmp0,path=/run/bx/web1.qmp,server=on,wait=off",
      "-mon", "chardev=qmp0,mode=control",
      "-kernel", "/vm/vmlinuz",
      "-append", DEFAULT_KERNEL_CMDLINE,
    ]);
  });

  it("uses KVM with the host CPU, or the CPU model given", () => {
    const kvm = args({ accel: "kvm" });
    expect(valuesOf(kvm, "-accel")).toEqual(["kvm"]);
    expect(valueOf(kvm, "-cpu")).toBe("host");
    expect(valueOf(args({ accel: "kvm", cpuModel: "max" }), "-cpu")).toBe("max");
    // An empty model leaves QEMU's default CPU under KVM.
    const plain = args({ accel: "kvm", cpuModel: "" });
    expect(valuesOf(plain, "-accel")).toEqual(["kvm"]);
    expect(plain.includes("-cpu")).toBe(false);
    // TCG emulates every feature it can (-cpu host needs KVM).
    expect(valuesOf(args(), "-cpu")).toEqual(["max"]);
  });

  it("appends the driver's own parameters to the command line and forwards published ports", () => {
    const argv = args({
      extraCmdline: "blixard.nonce=abc",
      network: {
        publish: [
          { hostPort: 8080, guestPort: 80 },
          { hostPort: 2222, guestPort: 22 },
        ],
        bindAddress: "127.0.0.1",
      },
    });
    expect(valueOf(argv, "-append")).toBe(`${DEFAULT_KERNEL_CMDLINE} blixard.nonce=abc`);
    expect(valueOf(argv, "-netdev")).toBe(
      "user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp:127.0.0.1:2222-:22",
    );
    expect(valuesOf(argv, "-device")).toEqual(["virtio-net-device,netdev=net0"]);
    expect(() => args({ network: { publish: [{ hostPort: 0, guestPort: 80 }] } })).toThrow(
      InvalidArgumentError,
    );
  });

  it("adds the node's own forwards on 127.0.0.1 from an ephemeral host port after the published ones", () => {
    const argv = args({
      network: { publish: [{ hostPort: 8080, guestPort: 80 }], localForwards: [81] },
    });
    expect(valueOf(argv, "-netdev")).toBe(
      "user,id=net0,hostfwd=tcp::8080-:80,hostfwd=tcp:127.0.0.1:0-:81",
    );
    expect(() => args({ network: { publish: [], localForwards: [70_000] } })).toThrow(
      InvalidArgumentError,
    );
  });

  it("gives the guest agent a virtio-serial port served on a unix socket, only when asked", () => {
    const argv = args({ agentSocketPath: "/run/bx/web1,a.agent" });
    expect(valuesOf(argv, "-chardev")).toContain(
      "socket,id=agent0,path=/run/bx/web1,,a.agent,server=on,wait=off",
    );
    expect(valuesOf(argv, "-device")).toEqual([
      "virtio-serial-device",
      "virtserialport,chardev=agent0,name=org.blixard.agent",
    ]);
    expect(args().join(" ")).not.toContain("virtio-serial");
    expect(() => args({ agentSocketPath: `/${"a".repeat(120)}` })).toThrow(
      /guest agent socket path .* more than the 107/,
    );
  });

  it("passes an initrd and the spec's command line", () => {
    const argv = args(
      {},
      { initrd: "/vm/initrd.img", cmdline: "console=ttyS0 quiet init=/bin/sh" },
    );
    expect(valueOf(argv, "-initrd")).toBe("/vm/initrd.img");
    expect(valueOf(argv, "-append")).toBe("console=ttyS0 quiet init=/bin/sh");
  });

  it("attaches a base image read-only as a virtio-blk device, raw or qcow2 by its extension", () => {
    const raw = args({}, { kernel: "", image: "/vm/root.img" });
    expect(valuesOf(raw, "-drive")).toEqual([
      "id=disk0,node-name=disk0fmt,file=/vm/root.img,format=raw,if=none,readonly=on",
    ]);
    expect(valuesOf(raw, "-device")).toEqual(["virtio-blk-device,drive=disk0"]);
    // No kernel: the firmware is left to boot the disk, and no -append may be given.
    expect(raw.includes("-kernel")).toBe(false);
    expect(raw.includes("-append")).toBe(false);
    const qcow = args({}, { kernel: "", image: "/vm/Root.QCOW2" });
    expect(valueOf(qcow, "-drive")).toBe(
      "id=disk0,node-name=disk0fmt,file=/vm/Root.QCOW2,format=qcow2,if=none,readonly=on",
    );
  });

  it("attaches the VM's own writable overlay instead of its base when the driver made one", () => {
    const argv = args(
      { disk: { path: "/data/disks/web.qcow2", format: "qcow2", readOnly: false } },
      { image: "/vm/root.img" },
    );
    expect(valuesOf(argv, "-drive")).toEqual([
      "id=disk0,node-name=disk0fmt,file=/data/disks/web.qcow2,format=qcow2,if=none",
    ]);
    expect(argv.join(" ")).not.toContain("/vm/root.img");
  });

  it("makes the disk the root file system when a kernel boots with it and no command line", () => {
    const argv = args({}, { image: "/vm/root.img" });
    expect(valueOf(argv, "-append")).toBe(`${DEFAULT_KERNEL_CMDLINE} root=/dev/vda`);
    expect(valueOf(args({}, { image: "/vm/root.img", cmdline: "root=/dev/vdb" }), "-append")).toBe(
      "root=/dev/vdb",
    );
  });

  it("keeps paths with spaces whole and doubles commas inside option values", () => {
    const argv = args(
      {
        name: "a,b",
        qmpSocketPath: "/run/my vms/a,b.qmp",
        serialLogPath: "/var/log/my vms/a,b.log",
      },
      { kernel: "/my vms/vmlinuz,1", initrd: "/my vms/initrd 1", image: "/my vms/disk,1.img" },
    );
    expect(valueOf(argv, "-name")).toBe("guest=a,,b");
    expect(valuesOf(argv, "-chardev")).toEqual([
      "file,id=serial0,path=/var/log/my vms/a,,b.log",
      "socket,id=qmp0,path=/run/my vms/a,,b.qmp,server=on,wait=off",
    ]);
    // -kernel and -initrd take their value whole: no escaping there.
    expect(valueOf(argv, "-kernel")).toBe("/my vms/vmlinuz,1");
    expect(valueOf(argv, "-initrd")).toBe("/my vms/initrd 1");
    expect(valueOf(argv, "-drive")).toBe(
      "id=disk0,node-name=disk0fmt,file=/my vms/disk,,1.img,format=raw,if=none,readonly=on",
    );
  });

  it("sends the serial console to a file when asked", () => {
    const argv = args({ serialLogPath: "/var/log/web1.serial" });
    expect(valuesOf(argv, "-chardev")[0]).toBe("file,id=serial0,path=/var/log/web1.serial");
    expect(valueOf(argv, "-serial")).toBe("chardev:serial0");
  });

  it.each([
    [
      { kernel: "", image: "" },
      /needs a kernel \(with an optional initrd\) or a disk image; the spec has neither/,
    ],
    [{ kernel: "", image: "/x.img", initrd: "/i" }, /an initrd needs a kernel/],
    [{ kernel: "", image: "/x.img", cmdline: "quiet" }, /a kernel command line needs a kernel/],
    [{ vcpus: 0 }, /vcpus must be an integer from 1 to 255, got 0/],
    [{ vcpus: 1.5 }, /vcpus must be an integer/],
    [{ vcpus: 256 }, /vcpus must be an integer/],
    [{ memoryMb: 0 }, /memoryMb must be a positive integer, got 0/],
    [{ memoryMb: -256 }, /memoryMb must be a positive integer/],
    [{ kernel: "vmlinuz" }, /the kernel must be an absolute path/],
    [{ image: "disk.img" }, /the disk image must be an absolute path/],
    [{ initrd: "./initrd" }, /the initrd must be an absolute path/],
    [{ kernel: "/vm/a\0b" }, /the kernel holds a NUL byte/],
    [{ cmdline: "a\0b" }, /command line holds a NUL byte/],
  ])("refuses %o with a clear InvalidArgumentError", (spec, message) => {
    let error: unknown;
    try {
      args({}, spec);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/^VM web1: /);
  });

  it("refuses a QMP socket path longer than a unix socket address holds", () => {
    const long = `/${"d".repeat(100)}/web1.qmp`;
    expect(() => args({ qmpSocketPath: long })).toThrow(InvalidArgumentError);
    expect(() => args({ qmpSocketPath: long })).toThrow(/is 110 bytes, more than the 107/);
    // Bytes, not characters: 35 three-byte characters make 105 bytes plus "/", ".q" = 108.
    expect(() => args({ qmpSocketPath: `/${"€".repeat(35)}.q` })).toThrow(/108 bytes/);
    expect(() => args({ qmpSocketPath: `/${"d".repeat(106)}` })).not.toThrow();
    expect(() => args({ qmpSocketPath: "relative.qmp" })).toThrow(/must be an absolute path/);
  });

  it("is a pure function: the same config gives the same argv", () => {
    expect(args({}, { image: "/a b.img" })).toEqual(args({}, { image: "/a b.img" }));
  });
});

describe("optionValue", () => {
  it("doubles every comma and leaves everything else alone", () => {
    expect(optionValue("a,b,,c")).toBe("a,,b,,,,c");
    expect(optionValue("/plain path=x")).toBe("/plain path=x");
  });
});
