#!/usr/bin/env bash
# Build kiln's libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined) into build/fuzz/.
# Usage: fuzz/build.sh            (CLANG=clang-14 fuzz/build.sh to pick a compiler)
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG=${CLANG:-clang}
if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "fuzz: $CLANG not found; install it (Debian: apt-get install -y clang)" >&2
	exit 1
fi

# The project's warning set, plus the sanitizers libFuzzer needs. Abort on the
# first UBSan report so it counts as a crash.
# shellcheck disable=SC2054 # the commas belong to -fsanitize=
CFLAGS=(-std=gnu11 -O1 -g -fno-omit-frame-pointer
	-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
	-Wpointer-arith -Wformat=2 -Wundef -Wvla -Wno-unused-parameter
	-D_GNU_SOURCE -Isrc
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)

# One line per target: name, then the kiln sources it links besides fuzz/NAME.c.
TARGETS=(
	"fuzz_virtqueue src/core/memory.c src/virtio/virtqueue.c"
	"fuzz_blk src/core/memory.c src/virtio/virtqueue.c src/virtio/blk_req.c"
	"fuzz_api src/api/api_route.c src/api/api_validate.c src/api/api_fault.c -ljansson"
	"fuzz_mmds src/net/mmds.c -ljansson -lhttp_parser -pthread"
	"fuzz_net -Itests/unit src/core/memory.c src/core/bus.c src/core/ioloop.c src/virtio/virtqueue.c src/virtio/virtio.c src/virtio/net.c src/net/frame.c tests/unit/stub_vm.c -pthread"
)

mkdir -p build/fuzz
for t in "${TARGETS[@]}"; do
	read -r name srcs <<<"$t"
	# shellcheck disable=SC2086 # srcs is a word list
	"$CLANG" "${CFLAGS[@]}" -o "build/fuzz/$name" "fuzz/$name.c" $srcs
	echo "fuzz: built build/fuzz/$name"
done
