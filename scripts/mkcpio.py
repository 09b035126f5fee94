#!/usr/bin/env python3
"""Write a cpio "newc" archive (the initramfs format) from a directory.

usage: scripts/mkcpio.py DIR OUT [--nod PATH:MODE:MAJOR:MINOR]...
                         [--slink PATH:TARGET]... [--slinks-from FILE TARGET]

Like the kernel's usr/gen_init_cpio, without root and reproducibly: every
entry is owned by 0:0 with mtime 0, files are stored in sorted order, and
device nodes (--nod /dev/console:600:5:1 — character devices) are written
into the archive without mknod on the host. --slink adds a symlink;
--slinks-from adds one symlink to TARGET per path listed in FILE (busybox's
applets, without hundreds of `ln` processes). Documentation/driver-api/
early-userspace/buffer-format.rst describes the format.
"""
import os
import stat
import sys

NEWC_MAGIC = b"070701"


def pad4(n):
    return (4 - n % 4) % 4


class Writer:
    def __init__(self, f):
        self.f = f
        self.ino = 721

    def entry(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        self.ino += 1
        name_b = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(name_b), 0]
        hdr = NEWC_MAGIC + b"".join(b"%08X" % v for v in fields)
        self.f.write(hdr + name_b + b"\0" * pad4(len(hdr) + len(name_b)))
        self.f.write(data + b"\0" * pad4(len(data)))

    def trailer(self):
        self.entry("TRAILER!!!", 0)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    root, out = argv[1], argv[2]
    nodes, links = [], {}
    rest = argv[3:]
    while rest:
        if rest[0] == "--nod" and len(rest) >= 2:
            path, mode, major, minor = rest[1].split(":")
            nodes.append((path.lstrip("/"), int(mode, 8), int(major), int(minor)))
            rest = rest[2:]
        elif rest[0] == "--slink" and len(rest) >= 2:
            path, target = rest[1].split(":", 1)
            links[os.path.normpath(path.lstrip("/"))] = target
            rest = rest[2:]
        elif rest[0] == "--slinks-from" and len(rest) >= 3:
            with open(rest[1]) as f:
                for line in f:
                    path = line.strip().lstrip("/")
                    if path:
                        links.setdefault(os.path.normpath(path), rest[2])
            rest = rest[3:]
        else:
            sys.stderr.write(f"mkcpio: bad argument {rest[0]}\n")
            return 2

    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            entries.append((os.path.normpath(os.path.join(rel, n)), p))
    present = {name for name, _ in entries}
    # A listed link never replaces a real file of the tree (bin/busybox itself).
    links = {k: v for k, v in links.items() if k not in present}
    for d in sorted({os.path.dirname(k) for k in links}):
        if d and d not in present:
            sys.stderr.write(f"mkcpio: no directory {d} in {root} for a link\n")
            return 2
    entries.sort()

    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        w = Writer(f)
        for name, p in entries:
            st = os.lstat(p)
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                w.entry(name, stat.S_IFDIR | perm, nlink=2)
            elif stat.S_ISLNK(st.st_mode):
                w.entry(name, stat.S_IFLNK | 0o777, os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as src:
                    w.entry(name, stat.S_IFREG | perm, src.read())
            else:
                sys.stderr.write(f"mkcpio: skipping special file {p}\n")
        for name in sorted(links):
            w.entry(name, stat.S_IFLNK | 0o777, links[name].encode())
        for name, mode, major, minor in nodes:
            w.entry(name, stat.S_IFCHR | mode, rdev=(major, minor))
        w.trailer()
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
