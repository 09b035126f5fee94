#!/usr/bin/env python3
"""Extract the uncompressed ELF vmlinux from an x86 bzImage.

usage: scripts/extract-vmlinux.py BZIMAGE OUT

kiln boots an ELF vmlinux with a PVH note without running the kernel's
decompressor (minutes saved on a kvm_pvm host, where guest CPL0 code is
emulated). The payload is found through the boot protocol header
(payload_offset/payload_length, protocol >= 2.08; Documentation/x86/boot.rst),
falling back to a scan for compressor magics like the kernel's
scripts/extract-vmlinux. gzip, xz, lzma, bzip2 use Python's modules; zstd and
lz4 the zstd/lz4 programs. The result must start with an ELF header.
Exit status: 0 written, 1 not found / not decompressible, 2 usage.
"""
import bz2
import lzma
import os
import shutil
import struct
import subprocess
import sys
import zlib

MAGICS = [
    (b"\x1f\x8b\x08", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x02\x21\x4c\x18", "lz4"),
    (b"BZh", "bzip2"),
    (b"\x5d\x00\x00\x00", "lzma"),
]


def kind_of(data):
    for magic, kind in MAGICS:
        if data.startswith(magic):
            return kind
    return None


def run_tool(argv, data):
    if shutil.which(argv[0]) is None:
        raise RuntimeError(f"{argv[0]} not installed")
    p = subprocess.run(argv, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    # Trailing bytes after the frame (the kernel's appended size) make the
    # tools complain but the frame itself decoded fine: keep what came out.
    if not p.stdout:
        raise RuntimeError(p.stderr.decode(errors="replace").strip())
    return p.stdout


def decompress(kind, data):
    if kind == "gzip":
        return zlib.decompressobj(wbits=31).decompress(data)
    if kind == "xz":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)
    if kind == "lzma":
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(data)
    if kind == "bzip2":
        return bz2.BZ2Decompressor().decompress(data)
    if kind == "zstd":
        return run_tool(["zstd", "-dc", "-q"], data)
    if kind == "lz4":
        return run_tool(["lz4", "-dc", "-q"], data)
    raise RuntimeError(f"unknown format {kind}")


def header_payload(img):
    """The payload slice named by the setup header, or None."""
    if len(img) < 0x250 or img[0x202:0x206] != b"HdrS":
        return None
    version = struct.unpack_from("<H", img, 0x206)[0]
    if version < 0x208:
        return None
    setup_sects = img[0x1F1] or 4
    pm_start = (setup_sects + 1) * 512
    off, length = struct.unpack_from("<II", img, 0x248)
    start = pm_start + off
    if length == 0 or start + length > len(img):
        return None
    return img[start:start + length]


def try_payload(payload):
    kind = kind_of(payload)
    if kind is None:
        return None, None
    # The kernel build appends the uncompressed size (le32) to the stream.
    expect = struct.unpack_from("<I", payload, len(payload) - 4)[0]
    body = payload
    if kind in ("zstd", "lz4"):
        body = payload[:-4]
    out = decompress(kind, body)
    if not out.startswith(b"\x7fELF"):
        return kind, None
    if len(out) != expect:
        # Not fatal (the scan path has no exact end), but say so.
        sys.stderr.write(f"extract-vmlinux: note: {len(out)} bytes, "
                         f"header said {expect}\n")
    return kind, out


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    src, dst = argv[1], argv[2]
    with open(src, "rb") as f:
        img = f.read()

    def candidates():
        p = header_payload(img)
        if p is not None:
            yield "setup header", p
        view = memoryview(img)
        for magic, _ in MAGICS:
            pos = img.find(magic)
            while pos >= 0:
                yield f"scan @{pos:#x}", bytes(view[pos:])
                pos = img.find(magic, pos + 1)

    for where, payload in candidates():
        try:
            kind, out = try_payload(payload)
        except (RuntimeError, OSError, lzma.LZMAError, zlib.error,
                EOFError, ValueError) as e:
            sys.stderr.write(f"extract-vmlinux: {where}: {e}\n")
            continue
        if out is None:
            continue
        tmp = dst + ".tmp"
        with open(tmp, "wb") as f:
            f.write(out)
        os.replace(tmp, dst)
        print(f"extract-vmlinux: {kind} payload ({where}) -> {dst}, "
              f"{len(out)} bytes")
        return 0
    sys.stderr.write(f"extract-vmlinux: no decompressible ELF payload in "
                     f"{src}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
