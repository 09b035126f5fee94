#!/usr/bin/env python3
"""The test guests' disk image: make one with known content, or check that only the expected sectors changed.

usage: disk-image.py make PATH SECTORS [FIRST:COUNT]
       disk-image.py check PATH SECTORS [FIRST:COUNT]
FIRST..FIRST+COUNT-1 hold the virtio_blk guest's pattern (make: write it too, for cmp).

Byte i of sector s is (s >> 8*i) & 0xff for i < 8 (the sector number, little-endian), else
(s*7 + i*13 + (s >> 8)) & 0xff: disk_byte() in tests/guests/lib/virtio.h. The pattern is
(s*31 + i*17 + 0xa5) & 0xff: pattern_byte() there. check prints the first difference and exits 1.
"""
import sys

SECTOR = 512


# Both depend on s only through a byte-sized offset: 256 precomputed tails each.
DISK_TAILS = [bytes((o + i * 13) & 0xFF for i in range(8, SECTOR)) for o in range(256)]
PATTERNS = [bytes((o + i * 17) & 0xFF for i in range(SECTOR)) for o in range(256)]


def disk_sector(s):
    return s.to_bytes(8, "little") + DISK_TAILS[(s * 7 + (s >> 8)) & 0xFF]


def pattern_sector(s):
    return PATTERNS[(s * 31 + 0xA5) & 0xFF]


def main(argv):
    if len(argv) < 4 or argv[1] not in ("make", "check"):
        sys.exit(__doc__.split("\n\n")[1])
    path, sectors = argv[2], int(argv[3])
    first, count = (int(x) for x in argv[4].split(":")) if len(argv) > 4 else (0, 0)

    def want(s):
        return pattern_sector(s) if first <= s < first + count else disk_sector(s)

    if argv[1] == "make":
        with open(path, "wb") as f:
            for base in range(0, sectors, 2048):     # 1 MiB per write
                f.write(b"".join(want(s) for s in range(base, min(base + 2048, sectors))))
        return 0
    with open(path, "rb") as f:
        data = f.read()
    if len(data) != sectors * SECTOR:
        print(f"image is {len(data)} bytes, expected {sectors * SECTOR}")
        return 1
    for s in range(sectors):
        w = want(s)
        got = data[s * SECTOR:(s + 1) * SECTOR]
        if got != w:
            i = next(i for i in range(SECTOR) if got[i] != w[i])
            what = "the guest's pattern" if first <= s < first + count else "the original content"
            print(f"sector {s} byte {i} is {got[i]:#x}, expected {w[i]:#x} ({what})")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
