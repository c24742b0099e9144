/**
 * The command line of a `qemu-system-x86_64 -M microvm` VM, as a pure function of its spec and
 * where its files go (issue 7, item 5). Unit-tested without QEMU.
 *
 * Choices worth knowing:
 * - The monitor is `-chardev socket,…,server=on,wait=off -mon …,mode=control`: the same as
 *   `-qmp unix:<path>,server,nowait`, but in the long form, whose values can hold any path (a
 *   comma is written `,,`) and whose booleans are not the short forms QEMU 6.0 deprecated.
 * - `-nodefaults -no-user-config -nographic`: no default devices, no host config files, no window
 *   and (with `-nodefaults`) no monitor on stdio. The serial console goes to a file when
 *   `serialLogPath` is given, else to QEMU's stdout (the driver pipes it into a capped log).
 * - KVM runs `-cpu host` (override with `cpuModel`; `""` = QEMU's default); TCG runs `-cpu max`
 *   (every feature TCG emulates; the Debian cloud kernel boots with it).
 * - `-no-reboot`: a guest that reboots (`reboot -f`, or `panic=-1` after a panic) ends QEMU, so
 *   the supervisor sees the exit instead of a guest looping through boots.
 * - The default kernel command line is for the Debian cloud kernel under microvm with ACPI:
 *   TCG offers no timer the kernel can calibrate its delay loop against, and without `lpj=` it
 *   waits at "Marking TSC unstable" for minutes (measured); `lpj`, `tsc=reliable` and
 *   `no_timer_check` skip the calibration. ACPI stays on because it is how this kernel finds the
 *   virtio-mmio devices (`CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES` is off).
 * - Networking is QEMU's user mode (slirp: guest 10.0.2.15, gateway 10.0.2.2, no privileges),
 *   with `publish` as `hostfwd` rules on the host's loopback and other addresses (`bindAddress`).
 *   `localForwards` are the node's own (a health check's TCP port): on 127.0.0.1 only, host port
 *   0 (the kernel picks a free one; the driver reads it back with `info usernet`), so they never
 *   collide with another VM's or anything else on the host.
 * - The guest agent's channel is a `virtio-serial-device` with one port named
 *   `org.blixard.agent`, whose host end is a unix socket QEMU serves (`agentSocketPath`).
 * - A disk is a `virtio-blk-device` (microvm has virtio-mmio, not PCI): the VM's own qcow2
 *   overlay over its base image (or its blank data disk) when the driver made one, else the base
 *   itself read-only (`readonly=on`); a base's format is `qcow2` for a `.qcow2` file, else `raw`.
 *   Without a kernel the firmware must boot the disk itself: Debian's `bios-microvm.bin` is qboot, which boots only a `-kernel`, so there a
 *   disk-only VM starts, answers QMP and idles; boot a kernel with the disk as its root instead.
 */
import { InvalidArgumentError } from "../../common/errors.js";
import type { VmSpec } from "../../statemachine/orchestrator/types.js";
import { GUEST_AGENT_PORT_NAME } from "./guest-agent-protocol.js";
import { MAX_UNIX_SOCKET_PATH_BYTES } from "./limits.js";
import { imageFormat, type VmDisk } from "./qemu-disks.js";

/**
 * The block node name of a VM's disk (its top format layer): a live migration exports it to the
 * source over NBD on the target, and the source mirrors its disk there (`qemu-disk-migration.ts`).
 */
export const DISK_NODE_NAME = "disk0fmt";

/** The QEMU binary the driver runs by default (looked up on PATH). */
export const QEMU_BINARY = "qemu-system-x86_64";

/** How guest code runs: hardware virtualization, or QEMU's translator. */
export type QemuAccelerator = "kvm" | "tcg";

/** The kernel command line when the spec gives none: the console on the serial port. */
export const DEFAULT_KERNEL_CMDLINE =
  "console=ttyS0 panic=-1 reboot=t lpj=2000000 tsc=reliable no_timer_check";

/** A host TCP port forwarded to a guest port (user-mode networking). */
export interface PortForward {
  readonly hostPort: number;
  readonly guestPort: number;
}

/** Added to the default command line when a disk image is attached: it is the root file system. */
export const DEFAULT_ROOT_ARGUMENT = "root=/dev/vda";

/** The most vCPUs a microvm gets here (x86 without x2APIC addresses 255 CPUs). */
export const MAX_QEMU_VCPUS = 255;

/** Everything the command line depends on. */
export interface QemuLaunchConfig {
  /** The VM's name, shown by QEMU (`-name guest=…`). */
  readonly name: string;
  readonly spec: Pick<VmSpec, "vcpus" | "memoryMb" | "kernel" | "initrd" | "image" | "cmdline">;
  readonly accel: QemuAccelerator;
  /** The unix socket QEMU listens on for QMP; at most 107 bytes. */
  readonly qmpSocketPath: string;
  /** The unix socket QEMU serves for the guest agent's virtio-serial port; omitted: no channel. At most 107 bytes. */
  readonly agentSocketPath?: string;
  /** The file the serial console is written to; omitted: QEMU's stdout. */
  readonly serialLogPath?: string;
  /** The CPU model under KVM. Default `host`. */
  readonly cpuModel?: string;
  /** Appended to the kernel command line (the driver's own parameters, e.g. the ready nonce). */
  readonly extraCmdline?: string;
  /**
   * The disk to attach (the VM's own overlay or data disk, see `qemu-disks.ts`); omitted: the
   * spec's image, read-only, if it has one.
   */
  readonly disk?: VmDisk;
  /** User-mode networking with these forwards; omitted: no network device. */
  readonly network?: {
    readonly publish: readonly PortForward[];
    /** The host address forwards listen on; default all (`""`). */
    readonly bindAddress?: string;
    /** Guest ports forwarded from an ephemeral port on the host's 127.0.0.1 (the node's use only). */
    readonly localForwards?: readonly number[];
  };
}

/**
 * The arguments (after the binary) that run `config`.
 * @throws InvalidArgumentError when the spec has neither kernel nor image, an initrd or command
 *   line without a kernel, a path that is not absolute or holds a NUL byte, vcpus or memory out of
 *   range, or a QMP socket path too long for a unix socket. The message says what to fix.
 */
export function buildQemuArgs(config: QemuLaunchConfig): string[] {
  const { spec, name } = config;
  checkSpec(name, spec);
  checkSocketPath("the QMP socket path", config.qmpSocketPath);
  if (config.agentSocketPath !== undefined) {
    checkSocketPath("the guest agent socket path", config.agentSocketPath);
  }

  const args = ["-name", `guest=${optionValue(name)}`, "-M", "microvm"];
  if (config.accel === "kvm") {
    // An empty model means QEMU's default CPU model (no -cpu at all).
    const model = config.cpuModel ?? "host";
    args.push("-accel", "kvm", ...(model === "" ? [] : ["-cpu", model]));
  } else args.push("-accel", "tcg", "-cpu", "max");
  args.push("-smp", String(spec.vcpus), "-m", `${spec.memoryMb}M`);
  args.push("-nodefaults", "-no-user-config", "-nographic", "-no-reboot");

  if (config.serialLogPath === undefined) {
    args.push("-chardev", "stdio,id=serial0,signal=off");
  } else {
    checkPath("the serial log path", config.serialLogPath);
    args.push("-chardev", `file,id=serial0,path=${optionValue(config.serialLogPath)}`);
  }
  args.push("-serial", "chardev:serial0");
  args.push(
    "-chardev",
    `socket,id=qmp0,path=${optionValue(config.qmpSocketPath)},server=on,wait=off`,
    "-mon",
    "chardev=qmp0,mode=control",
  );

  if (spec.kernel !== "") {
    // -kernel, -initrd and -append take their value whole: no comma escaping.
    args.push("-kernel", spec.kernel);
    if (spec.initrd !== "") args.push("-initrd", spec.initrd);
    const cmdline = spec.cmdline !== "" ? spec.cmdline : defaultCmdline(spec.image !== "");
    const extra = config.extraCmdline ?? "";
    args.push("-append", extra === "" ? cmdline : `${cmdline} ${extra}`);
  }
  if (config.network !== undefined) {
    const bind = config.network.bindAddress ?? "";
    const forwards = config.network.publish.map((forward) => {
      checkPort(name, forward.hostPort);
      checkPort(name, forward.guestPort);
      return `,hostfwd=tcp:${bind}:${forward.hostPort}-:${forward.guestPort}`;
    });
    for (const guestPort of config.network.localForwards ?? []) {
      checkPort(name, guestPort);
      forwards.push(`,hostfwd=tcp:127.0.0.1:0-:${guestPort}`);
    }
    args.push("-netdev", `user,id=net0${forwards.join("")}`);
    args.push("-device", "virtio-net-device,netdev=net0");
  }
  if (config.agentSocketPath !== undefined) {
    args.push(
      "-chardev",
      `socket,id=agent0,path=${optionValue(config.agentSocketPath)},server=on,wait=off`,
      "-device",
      "virtio-serial-device",
      "-device",
      `virtserialport,chardev=agent0,name=${GUEST_AGENT_PORT_NAME}`,
    );
  }
  const disk: VmDisk | undefined =
    config.disk ??
    (spec.image === ""
      ? undefined
      : { path: spec.image, format: imageFormat(spec.image), readOnly: true });
  if (disk !== undefined) {
    checkPath(`VM ${name}: the disk`, disk.path);
    const readOnly = disk.readOnly ? ",readonly=on" : "";
    args.push(
      "-drive",
      `id=disk0,node-name=${DISK_NODE_NAME},file=${optionValue(disk.path)},format=${disk.format},if=none${readOnly}`,
      "-device",
      "virtio-blk-device,drive=disk0",
    );
  }
  return args;
}

/** A value inside a QEMU option list (`key=value,key=value`): each comma doubled. */
export function optionValue(value: string): string {
  return value.replaceAll(",", ",,");
}

function defaultCmdline(withDisk: boolean): string {
  return withDisk ? `${DEFAULT_KERNEL_CMDLINE} ${DEFAULT_ROOT_ARGUMENT}` : DEFAULT_KERNEL_CMDLINE;
}

function checkSpec(name: string, spec: QemuLaunchConfig["spec"]): void {
  const bad = (what: string): InvalidArgumentError =>
    new InvalidArgumentError(`VM ${name}: ${what}`);
  if (spec.kernel === "" && spec.image === "") {
    throw bad(
      "the qemu driver needs a kernel (with an optional initrd) or a disk image; the spec has neither",
    );
  }
  if (spec.kernel === "" && spec.initrd !== "") {
    throw bad("an initrd needs a kernel to go with it; add the kernel or drop the initrd");
  }
  if (spec.kernel === "" && spec.cmdline !== "") {
    throw bad("a kernel command line needs a kernel; add the kernel or drop the command line");
  }
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1 || spec.vcpus > MAX_QEMU_VCPUS) {
    throw bad(`vcpus must be an integer from 1 to ${MAX_QEMU_VCPUS}, got ${spec.vcpus}`);
  }
  if (!Number.isInteger(spec.memoryMb) || spec.memoryMb < 1) {
    throw bad(`memoryMb must be a positive integer, got ${spec.memoryMb}`);
  }
  if (spec.kernel !== "") checkPath(`VM ${name}: the kernel`, spec.kernel);
  if (spec.initrd !== "") checkPath(`VM ${name}: the initrd`, spec.initrd);
  if (spec.image !== "") checkPath(`VM ${name}: the disk image`, spec.image);
  if (spec.cmdline.includes("\0")) throw bad("the kernel command line holds a NUL byte");
}

function checkPort(name: string, port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new InvalidArgumentError(
      `VM ${name}: a port must be an integer from 1 to 65535, got ${port}`,
    );
  }
}

function checkSocketPath(what: string, path: string): void {
  checkPath(what, path);
  const socketBytes = new TextEncoder().encode(path).length;
  if (socketBytes > MAX_UNIX_SOCKET_PATH_BYTES) {
    throw new InvalidArgumentError(
      `${what} ${path} is ${socketBytes} bytes, more than the ${MAX_UNIX_SOCKET_PATH_BYTES} a unix socket address holds; give the driver a shorter run directory`,
    );
  }
}

function checkPath(what: string, path: string): void {
  if (!path.startsWith("/")) {
    throw new InvalidArgumentError(
      `${what} must be an absolute path (QEMU runs in the driver's directory), got ${JSON.stringify(path)}`,
    );
  }
  if (path.includes("\0")) throw new InvalidArgumentError(`${what} holds a NUL byte`);
}
