/**
 * `blixard image build --out DIR`: builds the Blixard guest (the Debian cloud kernel and a
 * busybox-static initramfs with the kernel's virtio modules and the readiness agent) into DIR,
 * with `guest/build-image.sh`. DIR is then a node's `--vm-image-dir`.
 */
import { defaultShown } from "../option-defaults.js";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Option, type Command } from "commander";
import { UnavailableError } from "../../common/errors.js";

/** The build script; the same path from `src/cli/commands` and `dist/cli/commands`. */
const BUILD_SCRIPT = fileURLToPath(new URL("../../../guest/build-image.sh", import.meta.url));

/** Registers the `image` commands on `program`. */
export function registerImageCommands(program: Command): void {
  const image = program.command("image").description("build guest images for qemu VMs");
  image
    .command("build")
    .description(
      "build the Blixard guest (vmlinuz + initramfs.cpio.gz) from the installed Debian packages " +
        "linux-image-cloud-amd64, busybox-static and cpio",
    )
    .requiredOption("--out <dir>", "where to write it (use it as the nodes' --vm-image-dir)")
    .addOption(
      defaultShown(
        new Option("--kernel-version <version>", "a kernel under /lib/modules"),
        "the newest",
      ),
    )
    .action(async (options: { out: string; kernelVersion?: string }) => {
      const args = [
        options.out,
        ...(options.kernelVersion === undefined ? [] : [options.kernelVersion]),
      ];
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(BUILD_SCRIPT, args, { stdio: "inherit" });
        child.once("error", () => resolve(null));
        child.once("exit", (exitCode) => resolve(exitCode));
      });
      if (code !== 0) {
        throw new UnavailableError(
          `the guest build failed (${BUILD_SCRIPT}); install what it names and run it again`,
        );
      }
    });
}
