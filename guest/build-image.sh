#!/bin/sh
# Builds the Blixard guest: a small initramfs from Debian's busybox-static and the virtio modules
# of the installed Debian cloud kernel (linux-image-cloud-amd64), plus a copy of that kernel.
# Reproducible: the same packages give the same bytes (sorted entries, fixed times, gzip -n).
#
# usage: build-image.sh OUTDIR [KERNEL_VERSION]
# writes OUTDIR/vmlinuz and OUTDIR/initramfs.cpio.gz
set -eu
out="${1:?usage: build-image.sh OUTDIR [KERNEL_VERSION]}"
here="$(cd "$(dirname "$0")" && pwd)"
version="${2:-}"
if [ -z "$version" ]; then
  version="$(ls /lib/modules 2>/dev/null | sort -V | tail -n 1)"
fi
modules="/lib/modules/$version"
kernel="/boot/vmlinuz-$version"
busybox="$(command -v busybox || true)"
if [ -z "$version" ] || [ ! -d "$modules" ] || [ ! -r "$kernel" ]; then
  echo "build-image: no kernel found; install linux-image-cloud-amd64 (apt-get install linux-image-cloud-amd64)" >&2
  exit 2
fi
# ldd fails on a static binary: a dynamic busybox would not run in the initramfs.
if [ -z "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "build-image: a static busybox is needed; apt-get install busybox-static" >&2
  exit 2
fi
for tool in cpio gzip; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is missing; apt-get install $tool" >&2; exit 2; }
done

# Dependencies first: the order insmod needs.
order="virtio_ring virtio virtio_mmio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk failover net_failover virtio_net virtio_console"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/bin" "$root/lib/modules" "$root/etc" "$root/proc" "$root/sys" "$root/dev" \
  "$root/tmp" "$root/run" "$root/data" "$root/www"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$here/init.sh" "$root/init"
chmod 0755 "$root/init" "$root/bin/busybox"
: >"$root/lib/modules/load-order"
for name in $order; do
  path="$(find "$modules/kernel" -name "$name.ko" -o -name "$name.ko.xz" | head -n 1)"
  if [ -z "$path" ]; then
    echo "build-image: module $name not found under $modules (built in?); skipping" >&2
    continue
  fi
  case "$path" in
    *.xz) xz -dc "$path" >"$root/lib/modules/$name.ko" ;;
    *) cp "$path" "$root/lib/modules/$name.ko" ;;
  esac
  echo "$name" >>"$root/lib/modules/load-order"
done
echo "blixard guest" >"$root/www/index.html"
echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"

find "$root" -exec touch -h -d @0 {} +
mkdir -p "$out"
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -9 >"$out/initramfs.cpio.gz.tmp"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
cp "$kernel" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "build-image: $out/vmlinuz ($version) and $out/initramfs.cpio.gz"
