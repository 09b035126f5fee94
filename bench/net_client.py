#!/usr/bin/env python3
"""Host end of bench/net-throughput.sh: TCP throughput both ways and a UDP small-datagram flood.

usage: net_client.py tcp-send HOST PORT BYTES     host -> guest; prints "MB/s"
       net_client.py tcp-recv HOST PORT           guest -> host; prints "MB/s BYTES"
       net_client.py udp-flood HOST PORT SECONDS SIZE   prints datagrams sent per second
The TCP timings end when the far side has everything: tcp-send waits for the
guest's close after its own shutdown, tcp-recv for the guest's EOF.
"""
import socket
import sys
import time


def connect(host, port):
    deadline = time.time() + 30
    while True:
        try:
            return socket.create_connection((host, port), timeout=60)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def tcp_send(host, port, total):
    s = connect(host, port)
    buf = b"\0" * (1 << 16)
    t0 = time.monotonic()
    left = total
    while left > 0:
        left -= s.send(buf[: min(left, len(buf))])
    s.shutdown(socket.SHUT_WR)
    while s.recv(4096):
        pass
    dt = time.monotonic() - t0
    print("%.1f" % (total / dt / 1e6))


def tcp_recv(host, port):
    s = connect(host, port)
    t0 = time.monotonic()
    n = 0
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        n += len(b)
    dt = time.monotonic() - t0
    print("%.1f %d" % (n / dt / 1e6, n))


def udp_flood(host, port, seconds, size):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, port))
    payload = b"k" * size
    sent = 0
    t0 = time.monotonic()
    end = t0 + seconds
    while True:
        for _ in range(256):
            try:
                s.send(payload)
                sent += 1
            except (BlockingIOError, ConnectionRefusedError, OSError):
                pass
        if time.monotonic() >= end:
            break
    print("%d" % (sent / (time.monotonic() - t0)))


def main(a):
    if a[1] == "tcp-send":
        tcp_send(a[2], int(a[3]), int(a[4]))
    elif a[1] == "tcp-recv":
        tcp_recv(a[2], int(a[3]))
    elif a[1] == "udp-flood":
        udp_flood(a[2], int(a[3]), float(a[4]), int(a[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
