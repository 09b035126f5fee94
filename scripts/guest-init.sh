#!/bin/sh
# /init of kiln's busybox initramfs (installed by scripts/mk-debian-guest.sh).
#
# Kernel command line switches (read from /proc/cmdline):
#   (none)            an interactive shell on the console; leaving it powers off
#   kiln.test=1       print "kiln-guest: cpus=N" and power off (exit code 0)
#   kiln.test=panic   crash the kernel through sysrq (pvpanic -> kiln exit 6)
#   kiln.test=rng     list PCI functions, report the hw_random device and read
#                     4 KiB from it ("kiln-guest: rng read=4096"), power off
#   kiln.test=disk    the virtio checks of tests/linux/run.sh: on the ext4 disk
#                     /dev/vda (the root fs, or mounted on /mnt) print the
#                     sha256 of /known.bin, write /guest-wrote.txt with a fresh
#                     token, read 64 bytes of /dev/hwrng, name the console;
#                     then unmount (or remount read-only) and power off
#   kiln.test=net     the networking checks of tests/linux/run.sh: print eth0's
#                     address; kiln.dhcp=1 leases one with udhcpc first;
#                     kiln.mds=1 fetches the metadata service's EC2, OpenStack
#                     and MMDS V2 (token) paths; kiln.listen=PORT answers one
#                     TCP connection with "kiln-guest-hello"; kiln.wait=N stays
#                     up N seconds (for pings from the host); then power off
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
umask 022

mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid devtmpfs /dev 2>/dev/null || mdev -s
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs -o nosuid,nodev tmpfs /run 2>/dev/null
mount -t tmpfs -o nosuid,nodev tmpfs /tmp 2>/dev/null
hostname kiln-guest

# Modules built for this kernel (Debian's cloud kernel: pvpanic-mmio and its
# dependencies, in load order). A kernel with them built in has no directory.
kver=$(uname -r)
if [ -f "/lib/modules/$kver/kiln-load-order" ]; then
	while read -r m; do
		[ -n "$m" ] || continue
		insmod "/lib/modules/$kver/$m" 2>/dev/null ||
			echo "kiln-guest: insmod $m failed"
	done <"/lib/modules/$kver/kiln-load-order"
fi

mode=shell
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	kiln.test=1) mode="test" ;;
	kiln.test=panic) mode=panic ;;
	kiln.test=rng) mode=rng ;;
	kiln.test=disk) mode=disk ;;
	kiln.test=net) mode=net ;;
	kiln.dhcp=*) dhcp=${arg#*=} ;;
	kiln.mds=*) mds=${arg#*=} ;;
	kiln.listen=*) listen=${arg#*=} ;;
	kiln.wait=*) wait=${arg#*=} ;;
	esac
done

# Online CPUs (nproc = sched_getaffinity); present ones from sysfs.
cpus=$(nproc 2>/dev/null || grep -c '^processor' /proc/cpuinfo)
present=$(ls -d /sys/devices/system/cpu/cpu[0-9]* 2>/dev/null | wc -l)
echo "kiln-guest: cpus=$cpus"
echo "kiln-guest: kernel=$kver present-cpus=$present uptime=$(cut -d' ' -f1 /proc/uptime)s"

case "$mode" in
test)
	echo "kiln-guest: test mode, powering off"
	poweroff -f
	;;
rng)
	for d in /sys/bus/pci/devices/*; do
		[ -e "$d/vendor" ] && echo "kiln-guest: pci $(basename "$d") $(cat "$d/vendor"):$(cat "$d/device") msi_irqs=$(ls "$d/msi_irqs" 2>/dev/null | wc -l)"
	done
	rng=$(cat /sys/devices/virtual/misc/hw_random/rng_current 2>/dev/null)
	echo "kiln-guest: rng=${rng:-none}"
	# Bounded: a device that never answers must not hang the test.
	n=$(timeout 30 dd if=/dev/hwrng bs=512 count=8 2>/dev/null | wc -c)
	echo "kiln-guest: rng read=$n"
	grep -i virtio /proc/interrupts
	poweroff -f
	;;
disk)
	echo "kiln-guest: console=$(cat /sys/class/tty/console/active 2>/dev/null)"
	d=/
	# Drivers loaded as modules above probe asynchronously: wait (bounded) for the disk.
	i=0
	while [ ! -b /dev/vda ] && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	if ! grep -q '^/dev/root / \|^/dev/vda / ' /proc/mounts; then
		mkdir -p /mnt
		d=/mnt
		mount -t ext4 /dev/vda /mnt || echo "kiln-guest: mount /dev/vda failed"
	fi
	echo "kiln-guest: known-sha256=$(sha256sum "$d/known.bin" | cut -d' ' -f1)"
	tok=$(cat /proc/sys/kernel/random/uuid)
	echo "guest wrote $tok" >"$d/guest-wrote.txt" && echo "kiln-guest: wrote=$tok"
	echo "kiln-guest: hwrng=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)" \
		"hwrng-bytes=$(head -c 64 /dev/hwrng 2>/dev/null | wc -c)"
	sync
	if [ "$d" = /mnt ]; then umount /mnt; else mount -o remount,ro /; fi
	echo "kiln-guest: disk test done, powering off"
	poweroff -f
	;;
net)
	ip link set lo up
	ip link set eth0 up
	if [ "${dhcp:-0}" = 1 ]; then
		printf '#!/bin/sh\n[ "$1" = bound ] || exit 0\nip addr add "$ip/${mask:-24}" dev "$interface"\n%s\n' \
			'[ -n "$router" ] && ip route add default via "${router%% *}"' >/tmp/udhcpc.sh
		chmod +x /tmp/udhcpc.sh
		udhcpc -i eth0 -q -n -t 10 -T 2 -s /tmp/udhcpc.sh >/dev/null 2>&1 && echo "kiln-guest: udhcpc bound"
	fi
	dmesg | grep -m 3 'IP-Config:' | sed 's/^/kiln-guest: /'
	echo "kiln-guest: net addr=$(ip -4 -o addr show eth0 | awk '{print $4}')"
	if [ "${mds:-0}" = 1 ]; then
		u=http://169.254.169.254
		# busybox 1.35's wget crashes with -T: bound it with timeout instead.
		echo "kiln-guest: mds ec2-key=$(timeout 20 wget -q -O - $u/latest/meta-data/public-keys/0/openssh-key)"
		echo "kiln-guest: mds openstack=$(timeout 20 wget -q -O - $u/openstack/latest/meta_data.json | tr -d '\n')"
		# MMDS V2: a token from PUT (busybox wget cannot PUT: nc), then a GET that carries it.
		tok=$( (printf 'PUT /latest/api/token HTTP/1.0\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n'; sleep 3) |
			nc -w 10 169.254.169.254 80 | tail -n 1)
		echo "kiln-guest: mds v2-key=$(timeout 20 wget -q --header "X-metadata-token: $tok" -O - \
			$u/latest/meta-data/public-keys/0/openssh-key)"
		timeout 20 wget -q -O /dev/null $u/latest/meta-data/instance-id && r=ok || r=refused
		echo "kiln-guest: mds no-token=$r"
	fi
	[ -n "${listen:-}" ] && { echo kiln-guest-hello | nc -l -p "$listen" >/dev/null & } &&
		echo "kiln-guest: listening on $listen"
	sleep "${wait:-0}"
	echo "kiln-guest: net test done, powering off"
	poweroff -f
	;;
panic)
	echo "kiln-guest: panic mode, crashing the kernel (sysrq c)"
	echo 1 >/proc/sys/kernel/sysrq
	echo c >/proc/sysrq-trigger
	;;
*)
	echo "kiln-guest: shell on the console; 'exit' or 'poweroff -f' stops the VM"
	setsid cttyhack sh -l
	poweroff -f
	;;
esac
# Not reached unless poweroff/panic failed: never let init exit.
echo "kiln-guest: init fell through (mode=$mode)"
while :; do sleep 3600; done
