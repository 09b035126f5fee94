# The VMM command lines the network benches compare, in one place so that both benches measure the same machines (sourced, not run).
# shellcheck shell=bash disable=SC2054  # commas inside QEMU option values, not array separators

# net_vmm_cmd VMM BACKEND KILN KERNEL INITRD CONSOLE APPEND PORT [IO_POLL_US]
# Sets NET_VMM_CMD to the command for kiln or qemu: 1 vCPU, 256 MiB, one
# virtio-net NIC on the tap kt0 (BACKEND tap; run it in the tap's
# namespace) or on user-mode networking with host ports PORT, PORT+1 and
# PORT+2 forwarded to the guest's tcp 5001, tcp 5002 and udp 9 (127.0.0.1).
net_vmm_cmd() {
	local vmm=$1 be=$2 kiln=$3 kernel=$4 initrd=$5 con=$6 append=$7 p=$8 poll=${9:-0}
	local fwd="hostfwd=tcp:127.0.0.1:$p-:5001,hostfwd=tcp:127.0.0.1:$((p + 1))-:5002,hostfwd=udp:127.0.0.1:$((p + 2))-:9"

	if [ "$vmm" = kiln ]; then
		NET_VMM_CMD=("$kiln" run --kernel "$kernel" --initrd "$initrd" --cmdline "$append" --cpus 1 --memory 256
			--console "file:$con" --stats --io-poll "$poll")
		if [ "$be" = tap ]; then NET_VMM_CMD+=(--net tap=kt0); else NET_VMM_CMD+=(--net "user,$fwd"); fi
	else
		NET_VMM_CMD=(qemu-system-x86_64 -machine pc,accel=kvm -cpu host -m 256 -smp 1 -nodefaults -no-user-config
			-display none -serial "file:$con" -no-reboot -kernel "$kernel" -initrd "$initrd"
			-append "$append" -device virtio-net-pci,netdev=n0)
		if [ "$be" = tap ]; then NET_VMM_CMD+=(-netdev tap,id=n0,ifname=kt0,script=no,downscript=no,vnet_hdr=on)
		else NET_VMM_CMD+=(-netdev "user,id=n0,$fwd"); fi
	fi
}
