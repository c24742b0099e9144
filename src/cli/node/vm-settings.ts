/**
 * A node's qemu VM settings: where images come from, how long a guest may take to be ready, and
 * the Blixard guest's files inside the image directory (the KVM probe boots them).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";

/**
 * How long a qemu guest may take to announce readiness by default. Generous for TCG on a busy
 * host (measured: 4 s quiet, up to 60 s with 7 builds on 2 cores); a KVM guest needs about 1 s.
 */
export const DEFAULT_VM_READY_TIMEOUT_MS = 120_000;

/** The files `blixard image build` / `guest/build-image.sh` writes. */
export const GUEST_KERNEL_FILE = "vmlinuz";
export const GUEST_INITRD_FILE = "initramfs.cpio.gz";

/** A node's qemu VM settings. */
export interface VmSettings {
  /** The only directory kernels, initrds and disk images may come from; omitted: anywhere. */
  readonly imageDir?: string;
  /** See {@link DEFAULT_VM_READY_TIMEOUT_MS}; 0: readiness is not awaited. */
  readonly readyTimeoutMs: number;
  /**
   * Where a VM migrating to this node listens for its stream (the source node connects there):
   * the node's peer listen host, or this machine's host name when that is a wildcard.
   */
  readonly migrationHost?: string;
  /**
   * This node's TLS material and cluster, for live migrations over mutual TLS (see
   * `qemu-migration-tls.ts`); absent under `--insecure`: migrations go unencrypted.
   */
  readonly migrationTls?: MigrationTlsSettings;
}

/** What a node's QEMUs authenticate live migrations with: its own certificate, PEM. */
export interface MigrationTlsSettings {
  /** The cluster's CA certificate. */
  readonly ca: string;
  /** The node's certificate (naming `node-<id>.<cluster>.blixard`, serverAuth + clientAuth). */
  readonly cert: string;
  readonly key: string;
  /** The cluster: the target's certificate must name `node-<target>.<clusterId>.blixard`. */
  readonly clusterId: string;
}

/** The Blixard guest in `imageDir`, or undefined when it is not there. Throws nothing. */
export function guestIn(imageDir: string): { kernel: string; initrd: string } | undefined {
  const kernel = join(imageDir, GUEST_KERNEL_FILE);
  const initrd = join(imageDir, GUEST_INITRD_FILE);
  return existsSync(kernel) && existsSync(initrd) ? { kernel, initrd } : undefined;
}
