/**
 * Whether KVM really runs a guest here: boots the Blixard guest under `-accel kvm` and waits for
 * its readiness line. `/dev/kvm` opening proves nothing: under nested virtualization QEMU starts
 * and the guest hangs in early boot ("Probing EDD") for ever. Run once per node at start.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { GuestReadyWatcher, NONCE_PARAMETER } from "../drivers/guest-ready.js";
import { DEFAULT_KERNEL_CMDLINE } from "../drivers/qemu-args.js";

/** How long the guest may take to be ready under KVM: a KVM microVM boots in well under this. */
export const DEFAULT_KVM_PROBE_TIMEOUT_MS = 8_000;

/** What to boot. */
export interface KvmBootProbeOptions {
  /** The QEMU binary (path or name on PATH). */
  readonly binary: string;
  /** The Blixard guest's kernel and initramfs (`guest/build-image.sh`). */
  readonly kernel: string;
  readonly initrd: string;
  /** Default {@link DEFAULT_KVM_PROBE_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

/** The probe's verdict: `ok` when the guest announced readiness in time, else why not. */
export interface KvmBootProbeResult {
  readonly ok: boolean;
  readonly reason: string;
  readonly elapsedMs: number;
}

/** Boots the guest under KVM (host CPU model) and kills it. Never throws. */
export function probeKvmBoot(options: KvmBootProbeOptions): Promise<KvmBootProbeResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_KVM_PROBE_TIMEOUT_MS;
  const nonce = randomBytes(8).toString("hex");
  const args = ["-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "128M", "-smp", "1"];
  args.push("-nodefaults", "-no-user-config", "-nographic", "-no-reboot");
  args.push("-chardev", "stdio,id=serial0,signal=off", "-serial", "chardev:serial0");
  args.push("-kernel", options.kernel, "-initrd", options.initrd);
  args.push("-append", `${DEFAULT_KERNEL_CMDLINE} ${NONCE_PARAMETER}=${nonce}`);
  const startedAt = performance.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean, reason: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      resolve({ ok, reason, elapsedMs: Math.round(performance.now() - startedAt) });
    };
    const watcher = new GuestReadyWatcher(nonce, () => finish(true, "a guest booted under KVM"));
    const child = spawn(options.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    const timer = setTimeout(
      () =>
        finish(
          false,
          `the guest did not boot under KVM within ${timeoutMs} ms (last console lines: ${watcher.tail() || "none"})`,
        ),
      timeoutMs,
    );
    child.stdout.on("data", (chunk: Uint8Array) => watcher.push(chunk));
    child.stderr.on("data", (chunk: Uint8Array) => watcher.push(chunk));
    child.once("error", (error) => finish(false, `QEMU could not start: ${error.message}`));
    child.once("exit", (code, signal) =>
      finish(
        false,
        `QEMU exited (${signal ?? `code ${code}`}) before the guest was ready: ${watcher.tail()}`,
      ),
    );
  });
}
