#!/bin/sh
# Blixard guest init (PID 1 of the initramfs built by build-image.sh). It mounts the kernel's
# file systems, loads the virtio modules the Debian cloud kernel builds as modules, configures
# user-mode networking, mounts /dev/vda on /data when there is one, starts httpd on port 80,
# starts the guest agent and announces readiness on the serial console.
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

# The guest agent: runs commands from the node (blixard vm exec, command health checks) read from
# the virtio-serial port org.blixard.agent. Protocol (src/orchestrator/drivers/guest-agent-protocol.ts):
#   in:  EXEC <id> <timeoutSeconds> <base64 command>
#   out: BEGIN <id>, the output's first 64 KiB in base64, END <id> <exitCode> <outputBytes>
# One command at a time. While the node is not connected, reads see end of file: wait and retry.
# The port is opened (fd 3) before readiness is announced, so no command sent after it is lost.
agent() {
  while true; do
    if ! read -r verb id seconds payload <&3; then
      sleep 0.2
      continue
    fi
    [ "$verb" = "EXEC" ] || continue
    echo "$payload" | base64 -d >/run/agent-command.sh
    # The command gets no fd 3: nothing it starts can read or hold the agent's channel.
    timeout -s TERM "$seconds" sh /run/agent-command.sh </dev/null >/run/agent-output 2>&1 3<&-
    code=$?
    size=$(wc -c </run/agent-output)
    { echo "BEGIN $id"; head -c 65536 /run/agent-output | base64; echo "END $id $code $size"; } >&3
  done
}
agent_port=""
for dir in /sys/class/virtio-ports/*; do
  [ "$(cat "$dir/name" 2>/dev/null)" = "org.blixard.agent" ] && agent_port="/dev/${dir##*/}"
done
if [ -n "$agent_port" ]; then
  exec 3<>"$agent_port"
  agent &
else
  echo "blixard agent: no org.blixard.agent port; vm exec is unavailable"
fi

echo "BLIXARD-READY $nonce"

if [ -n "$run" ]; then
  echo "$run" | base64 -d >/run/blixard-run.sh
  sh /run/blixard-run.sh 3<&- &
fi

# PID 1 must not exit (the kernel would panic); it reaps orphans meanwhile.
while true; do
  sleep 3600
done
