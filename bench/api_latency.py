#!/usr/bin/env python3
"""API request latency and VMM start-to-socket-ready time (bench/api-latency.sh runs this).

Prints figures, no pass/fail. No /dev/kvm needed: everything is pre-boot.
  python3 bench/api_latency.py KILN [REQUESTS] [START_RUNS]
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

KILN = os.path.abspath(sys.argv[1])
N = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
RUNS = int(sys.argv[3]) if len(sys.argv) > 3 else 20
TMP = tempfile.mkdtemp(prefix="kiln-bench-api.")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))]


def summary(us):
    return (f"p50 {pct(us, 50):.0f} us, p99 {pct(us, 99):.0f} us, "
            f"mean {statistics.mean(us):.0f} us, max {max(us):.0f} us")


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def recv_response(s, buf=b""):
    """One HTTP response (Content-Length bodies only); returns (status, leftover)."""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            raise ConnectionError("closed")
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        rest += s.recv(65536)
    return int(head[9:12]), rest[length:]


def request(method, path, body=None):
    b = json.dumps(body).encode() if body is not None else b""
    h = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
    if body is not None:
        h += f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n"
    return (h + "\r\n").encode() + b


def keepalive(sock, req, n):
    s = connect(sock)
    us, buf = [], b""
    for _ in range(50):                     # warm-up
        s.sendall(req)
        _, buf = recv_response(s, buf)
    for _ in range(n):
        t = time.perf_counter_ns()
        s.sendall(req)
        st, buf = recv_response(s, buf)
        us.append((time.perf_counter_ns() - t) / 1000)
        assert st in (200, 204), st
    s.close()
    return us


def fresh(sock, req, n):
    us = []
    for _ in range(n):
        t = time.perf_counter_ns()
        s = connect(sock)
        s.sendall(req)
        st, _ = recv_response(s)
        us.append((time.perf_counter_ns() - t) / 1000)
        s.close()
        assert st in (200, 204), st
    return us


def start_to_socket(runs):
    """Spawn kiln, poll its socket until it accepts, SIGTERM it; CPU from wait4's rusage."""
    wall, cpu = [], []
    for i in range(runs + 2):
        sock = os.path.join(TMP, f"start{i}.sock")
        t = time.perf_counter_ns()
        p = subprocess.Popen([KILN, "run", "--api-sock", sock, "--console", "none"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        while True:
            try:
                connect(sock).close()
                break
            except OSError:
                if p.poll() is not None:
                    raise RuntimeError("kiln exited before its socket was ready")
                time.sleep(0.0001)
        ready = (time.perf_counter_ns() - t) / 1e6
        p.terminate()
        _, _, ru = os.wait4(p.pid, 0)
        p.returncode = 0
        if i >= 2:                           # 2 warm-up runs
            wall.append(ready)
            cpu.append((ru.ru_utime + ru.ru_stime) * 1000)
    return wall, cpu


def spawn_baseline(runs, argv):
    """Spawn + wait of argv: what starting any process costs here (wall, CPU)."""
    wall, cpu = [], []
    for _ in range(runs):
        t = time.perf_counter_ns()
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        p.returncode = 0
        wall.append((time.perf_counter_ns() - t) / 1e6)
        cpu.append((ru.ru_utime + ru.ru_stime) * 1000)
    return wall, cpu


def main():
    sock = os.path.join(TMP, "api.sock")
    p = subprocess.Popen([KILN, "run", "--api-sock", sock, "--console", "none"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(5000):
        if os.path.exists(sock):
            break
        time.sleep(0.001)
    time.sleep(0.05)
    print(f"api-latency: host {os.uname().release}, {os.cpu_count()} CPUs; client: python3 over AF_UNIX")
    get = request("GET", "/")
    put = request("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
    print(f"api-latency: GET / keep-alive, {N} requests: {summary(keepalive(sock, get, N))}")
    print(f"api-latency: PUT /machine-config keep-alive, {N} requests: {summary(keepalive(sock, put, N))}")
    print(f"api-latency: GET / new connection each, {N // 4} requests: {summary(fresh(sock, get, N // 4))}")
    # kiln's own view (time from request headers in to answer built), from a metrics line.
    mpath = os.path.join(TMP, "metrics.json")
    s = connect(sock)
    s.sendall(request("PUT", "/metrics", {"metrics_path": mpath}))
    recv_response(s)
    s.sendall(request("PUT", "/actions", {"action_type": "FlushMetrics"}))
    recv_response(s)
    s.close()
    m = json.loads(open(mpath).read().splitlines()[-1])["api"]["endpoints"]
    for k in ("GET /", "PUT /machine-config"):
        e = m[k]
        print(f"api-latency: in kiln (headers in -> answer built), {k}: p50 <= {e['p50_us']} us, "
              f"p99 <= {e['p99_us']} us, mean {e['mean_us']} us (log2 buckets)")
    p.terminate()
    p.wait()

    wall, cpu = start_to_socket(RUNS)
    print(f"api-latency: start to socket ready, {RUNS} runs: wall median {statistics.median(wall):.2f} ms "
          f"(min {min(wall):.2f}); CPU median {statistics.median(cpu):.2f} ms (min {min(cpu):.2f}, "
          f"exec and exit on SIGTERM included) — Firecracker promises <= 8 CPU ms")
    for argv in (["/bin/true"], [KILN, "--version"]):
        bw, bc = spawn_baseline(RUNS, argv)
        print(f"api-latency: for scale, {' '.join(os.path.basename(a) for a in argv)}: wall median "
              f"{statistics.median(bw):.2f} ms, CPU median {statistics.median(bc):.2f} ms (min {min(bc):.2f})")
    subprocess.run(["rm", "-rf", TMP])


if __name__ == "__main__":
    main()
