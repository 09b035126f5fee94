#!/usr/bin/env python3
"""The host end of the lwIP guest's TAP transfers: serves one download, takes one upload, reports both CRC-32s.

usage: lwip-peer.py ADDR DPORT UPORT DOWNLOAD_FILE RESULT_FILE
A connection to DPORT gets DOWNLOAD_FILE and then EOF. A connection to UPORT is
read to EOF; the peer answers "bytes=N crc32=XXXXXXXX\\n" on it and closes.
RESULT_FILE gets "ready", then "download bytes=N crc32=X" and "upload bytes=N
crc32=X" lines (zlib's CRC-32, the guest's too). Exits after both, or after
120 s without them (exit 1).
"""
import socket
import sys
import zlib


def main():
    addr, dport, uport, path, result = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    data = open(path, "rb").read()
    listeners = []
    for port in (dport, uport):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(1)
        s.settimeout(120)
        listeners.append(s)
    out = open(result, "w", buffering=1)
    out.write("ready\n")

    conn, _ = listeners[0].accept()
    conn.settimeout(60)
    conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
    conn.close()
    out.write("download bytes=%d crc32=%08x\n" % (len(data), zlib.crc32(data)))

    conn, _ = listeners[1].accept()
    conn.settimeout(60)
    crc, n = 0, 0
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        crc = zlib.crc32(chunk, crc)
        n += len(chunk)
    line = "bytes=%d crc32=%08x\n" % (n, crc)
    conn.sendall(line.encode())
    conn.close()
    out.write("upload " + line)


if __name__ == "__main__":
    try:
        main()
    except (OSError, socket.timeout) as e:
        print("lwip-peer: %s" % e, file=sys.stderr)
        sys.exit(1)
