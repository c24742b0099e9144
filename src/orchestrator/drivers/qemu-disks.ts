/**
 * Per-VM disks of the qemu driver: a guest never writes a base image.
 *
 * A VM with `image` gets its own qcow2 overlay `<diskDir>/<name>.qcow2` whose backing file is the
 * base (`qemu-img create -f qcow2 -b BASE -F FORMAT`): QEMU opens a backing file read-only, so
 * every write lands in the overlay, the base stays byte for byte what it was, and any number of
 * VMs can share one base at once (QEMU takes a shared lock on a read-only backing file). A VM
 * with `diskGb` and no image gets a blank qcow2 data disk of that size (the Blixard guest formats
 * a blank disk once and mounts it on `/data`); with both, the overlay grows to `diskGb` when the
 * base is smaller. The disk is made once and kept: it survives stops, restarts and node restarts
 * (the guest's files persist on this node) until the VM is deleted, or its current disk is on
 * another node (`Vm.diskNodeId`), when the agent discards it; `prepare(…, fresh)` starts over.
 *
 * A qcow2 base names its own backing file in its header, which could point anywhere on the
 * host; with an image directory every file of the base's backing chain must be inside it, or the
 * VM is refused. The base's format comes from its name (`.qcow2`, else raw) and is passed to
 * QEMU explicitly, so a raw image whose bytes look like qcow2 is never probed as one.
 */
import { execFile } from "node:child_process";
import { chmod, mkdir, readdir, realpath, rename, rm, stat } from "node:fs/promises";
import { join, sep } from "node:path";
import { InvalidArgumentError, UnavailableError } from "../../common/errors.js";
import type { VmSpec } from "../../statemachine/orchestrator/types.js";

/** The qemu-img binary the driver runs by default (looked up on PATH). */
export const QEMU_IMG_BINARY = "qemu-img";

/** How long one `qemu-img` call may take. */
export const QEMU_IMG_TIMEOUT_MS = 30_000;

/** Bytes of `qemu-img` output read (its JSON for a backing chain is small). */
const QEMU_IMG_MAX_OUTPUT_BYTES = 1024 * 1024;

const GIB = 1024 * 1024 * 1024;

/** The file name suffix of a VM's disk in the disk directory. */
const DISK_SUFFIX = ".qcow2";

/** A disk QEMU attaches to a VM. */
export interface VmDisk {
  readonly path: string;
  readonly format: "qcow2" | "raw";
  /** Attach read-only (a base image used without a disk directory). */
  readonly readOnly: boolean;
}

/** The format QEMU is told for an image file: `qcow2` by its name, else `raw`. */
export function imageFormat(path: string): "qcow2" | "raw" {
  return path.toLowerCase().endsWith(".qcow2") ? "qcow2" : "raw";
}

/** Where a driver keeps VM disks and how it makes them. */
export interface QemuDisksOptions {
  /** The directory of the per-VM disks; created (0700) when missing. */
  readonly diskDir: string;
  /** With it, every file of a base image's backing chain must be inside this directory. */
  readonly imageDir?: string;
  /** Default {@link QEMU_IMG_BINARY}. */
  readonly qemuImg?: string;
}

/** Makes, finds and discards per-VM disks (see the module comment). */
export class QemuDisks {
  constructor(private readonly options: QemuDisksOptions) {}

  /** The disk of VM `name` (whether or not it exists yet). */
  diskPath(name: string): string {
    return join(this.options.diskDir, `${name}${DISK_SUFFIX}`);
  }

  /**
   * The disk VM `name` runs with, made now if it does not exist yet; undefined when the spec
   * asks for none (no image, no diskGb). `fresh` discards a disk that exists first: an incoming
   * live migration copies the source's disk onto a new one, never onto what an earlier stay of
   * the VM on this node left (stale blocks the copy would not overwrite).
   * @throws InvalidArgumentError when the base's backing chain leaves the image directory;
   *   UnavailableError when qemu-img fails (its message quoted).
   */
  async prepare(
    name: string,
    spec: Pick<VmSpec, "image" | "diskGb">,
    fresh = false,
  ): Promise<VmDisk | undefined> {
    if (spec.image === "" && spec.diskGb === 0) return undefined;
    const path = this.diskPath(name);
    if (fresh) await this.discard(name);
    else if (await exists(path)) return { path, format: "qcow2", readOnly: false };
    await mkdir(this.options.diskDir, { recursive: true, mode: 0o700 });
    const wantedBytes = spec.diskGb * GIB;
    const args = ["create", "-q", "-f", "qcow2"];
    if (spec.image !== "") {
      const format = imageFormat(spec.image);
      const baseBytes = await this.checkBackingChain(name, spec.image, format);
      args.push("-b", spec.image, "-F", format);
      // Smaller than the base would cut the guest's file system off; equal is the default.
      if (wantedBytes > baseBytes) args.push("-o", `size=${wantedBytes}`);
    } else {
      args.push("-o", `size=${wantedBytes}`);
    }
    // Made under a temporary name and renamed: a crash never leaves a half-made disk in use.
    const partial = `${path}.partial`;
    await rm(partial, { force: true });
    args.push(partial);
    await this.run(args);
    await chmod(partial, 0o600);
    await rename(partial, path);
    return { path, format: "qcow2", readOnly: false };
  }

  /** Deletes VM `name`'s disk (nothing if it has none). Throws the file system's other errors. */
  async discard(name: string): Promise<void> {
    await rm(this.diskPath(name), { force: true });
    await rm(`${this.diskPath(name)}.partial`, { force: true });
  }

  /** The VMs with a disk here. Throws nothing (no directory: none). */
  async names(): Promise<string[]> {
    try {
      return (await readdir(this.options.diskDir))
        .filter((file) => file.endsWith(DISK_SUFFIX))
        .map((file) => file.slice(0, -DISK_SUFFIX.length));
    } catch {
      return [];
    }
  }

  /**
   * Reads the base's backing chain; with an image directory each file of it must resolve
   * inside. Returns the base's virtual size in bytes.
   */
  private async checkBackingChain(name: string, base: string, format: string): Promise<number> {
    const text = await this.run(["info", "--output=json", "--backing-chain", "-f", format, base]);
    let chain: { filename?: unknown; "virtual-size"?: unknown }[];
    try {
      const parsed: unknown = JSON.parse(text);
      chain = Array.isArray(parsed) ? (parsed as typeof chain) : [parsed as (typeof chain)[0]];
    } catch (error) {
      throw new UnavailableError(`qemu-img info ${base} printed no JSON`, { cause: error });
    }
    const { imageDir } = this.options;
    if (imageDir !== undefined) {
      const dir = await realpath(imageDir);
      for (const image of chain) {
        const file = typeof image.filename === "string" ? image.filename : "";
        const resolved = await realpath(file).catch(() => file);
        if (!(resolved === dir || resolved.startsWith(dir.endsWith(sep) ? dir : dir + sep))) {
          throw new InvalidArgumentError(
            `VM ${name}: the disk image ${base} is backed by ${file}, outside this node's VM image directory ${dir}; rebase the image onto a file inside it (qemu-img rebase) or flatten it (qemu-img convert)`,
          );
        }
      }
    }
    const size = chain[0]?.["virtual-size"];
    return typeof size === "number" ? size : 0;
  }

  private run(args: string[]): Promise<string> {
    const binary = this.options.qemuImg ?? QEMU_IMG_BINARY;
    return new Promise((resolve, reject) => {
      execFile(
        binary,
        args,
        { timeout: QEMU_IMG_TIMEOUT_MS, maxBuffer: QEMU_IMG_MAX_OUTPUT_BYTES },
        (error, stdout, stderr) => {
          if (error === null) resolve(stdout);
          else {
            const words = (stderr.trim() || error.message).slice(0, 500);
            reject(new UnavailableError(`${binary} ${args[0] ?? ""} failed: ${words}`));
          }
        },
      );
    });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
