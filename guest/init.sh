#!/bin/sh
# Blixard guest init (PID 1 of the initramfs built by build-image.sh). It mounts the kernel's
# file systems, loads the virtio modules the Debian cloud kernel builds as modules, configures
# user-mode networking, mounts /dev/vda on /data when there is one, starts httpd on port 80,
# announces readiness on the serial console and runs the guest agent.
#
# Kernel command line parameters it reads:
#   blixard.nonce=N   printed in the readiness line "BLIXARD-READY N" (the host matches it)
#   blixard.run=B64   a shell script, base64-encoded, run in the background after readiness
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /data
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
export PATH=/bin
exec </dev/console >/dev/console 2>&1

for module in $(cat /lib/modules/load-order); do
  insmod "/lib/modules/$module.ko" 2>/dev/null
done

nonce=""
run=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    blixard.nonce=*) nonce="${arg#blixard.nonce=}" ;;
    blixard.run=*) run="${arg#blixard.run=}" ;;
  esac
done

ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up
  ip addr add 10.0.2.15/24 dev eth0
  ip route add default via 10.0.2.2
  echo "nameserver 10.0.2.3" >/etc/resolv.conf
fi

# A fresh disk (a blank overlay) is formatted once; an existing file system is kept.
if [ -b /dev/vda ]; then
  mount -t ext4 /dev/vda /data 2>/dev/null || { mke2fs -q /dev/vda && mount -t ext4 /dev/vda /data; }
fi

# The guest's own service: busybox httpd serves /www on port 80 (reach it with --publish).
httpd -p 80 -h /www

echo "BLIXARD-READY $nonce"

if [ -n "$run" ]; then
  echo "$run" | base64 -d >/run/blixard-run.sh
  sh /run/blixard-run.sh &
fi

# The guest agent: PID 1 must not exit (the kernel would panic); it reaps orphans meanwhile.
while true; do
  sleep 3600
done
