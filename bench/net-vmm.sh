# The VMM command lines the network benches compare, in one place so that both benches measure the same machines (sourced, not run).
# shellcheck shell=bash disable=SC2054  # commas inside QEMU option values, not array separators

# net_guest: the guest the network benches run (sets GUEST): BENCH_GUEST
# (linux or lwip), else lwip on kvm_pvm, where QEMU cannot boot Linux, and
# linux elsewhere. Needs bench/lib.sh (bench_kvm_pvm).
net_guest() {
	if [ -n "${BENCH_GUEST:-}" ]; then GUEST=$BENCH_GUEST; elif bench_kvm_pvm; then GUEST=lwip; else GUEST=linux; fi
	case $GUEST in linux | lwip) ;; *) echo "bench: BENCH_GUEST must be linux or lwip, not '$GUEST'" >&2; exit 2 ;; esac
}

# net_vmm_cmd VMM BACKEND KILN KERNEL INITRD CONSOLE APPEND PORT [IO_POLL_US]
# Sets NET_VMM_CMD to the command for kiln or qemu: 1 vCPU, one virtio-net
# NIC on the tap kt0 (BACKEND tap; run it in the tap's namespace) or on
# user-mode networking with host ports PORT, PORT+1 and PORT+2 forwarded to
# the guest's tcp 5001, tcp 5002 and udp 9 (127.0.0.1).
# Two guests: a Linux bzImage with INITRD (256 MiB; QEMU's pc machine), or a
# PVH ELF (KERNEL ending in .elf: the lwIP test guest; INITRD ignored;
# 128 MiB; QEMU's microvm with PCIe, as bench/blk-iops.sh, and a modern-only
# virtio-net-pci like kiln's). QEMU's -cpu is BENCH_QEMU_CPU (bench/lib.sh).
net_vmm_cmd() {
	local vmm=$1 be=$2 kiln=$3 kernel=$4 initrd=$5 con=$6 append=$7 p=$8 poll=${9:-0}
	local fwd="hostfwd=tcp:127.0.0.1:$p-:5001,hostfwd=tcp:127.0.0.1:$((p + 1))-:5002,hostfwd=udp:127.0.0.1:$((p + 2))-:9"
	local elf=

	[[ $kernel == *.elf ]] && elf=1
	if [ "$vmm" = kiln ]; then
		NET_VMM_CMD=("$kiln" run --kernel "$kernel" --cmdline "$append" --cpus 1 --console "file:$con" --stats
			--io-poll "$poll")
		if [ -n "$elf" ]; then NET_VMM_CMD+=(--memory 128); else NET_VMM_CMD+=(--initrd "$initrd" --memory 256); fi
		if [ "$be" = tap ]; then NET_VMM_CMD+=(--net tap=kt0); else NET_VMM_CMD+=(--net "user,$fwd"); fi
	else
		NET_VMM_CMD=(qemu-system-x86_64 "${BENCH_QEMU_CPU[@]}" -smp 1 -display none -serial "file:$con" -no-reboot
			-kernel "$kernel" -append "$append")
		if [ -n "$elf" ]; then
			NET_VMM_CMD+=(-machine microvm,pcie=on,rtc=on,accel=kvm -m 128 -monitor none
				-device isa-debug-exit,iobase=0xf4,iosize=1 -device virtio-net-pci,netdev=n0,disable-legacy=on)
		else
			NET_VMM_CMD+=(-machine pc,accel=kvm -m 256 -nodefaults -no-user-config -initrd "$initrd"
				-device virtio-net-pci,netdev=n0)
		fi
		if [ "$be" = tap ]; then NET_VMM_CMD+=(-netdev tap,id=n0,ifname=kt0,script=no,downscript=no,vnet_hdr=on)
		else NET_VMM_CMD+=(-netdev "user,id=n0,$fwd"); fi
	fi
}
