#!/usr/bin/env python3
"""kiln's REST API end to end (run by tests/api/run.sh; see that file for usage).

Part A needs no /dev/kvm: the API socket, pre-boot configuration, error bodies,
the robustness list, 200 concurrent connections, --config-file, kiln ctl.
Part B needs /dev/kvm (the KVM lab): boots the test kernel through the API,
pauses and resumes a guest counter, flushes metrics, drives kiln ctl, ends the
guest with SendCtrlAltDel, and boots once more from a --config-file.
"""
import glob
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

KILN = os.path.abspath(sys.argv[1])
PARTS = sys.argv[2] if len(sys.argv) > 2 else "all"   # all | nokvm | kvm | kvmnet
CONN_TIMEOUT_S = 10          # API_CONN_TIMEOUT_S in src/api/api_server.h
MAX_BODY = 64 * 1024         # API_MAX_BODY in src/api/api.h

passed = failed = skipped = 0
TMP = tempfile.mkdtemp(prefix="kiln-api-test.")


def report(ok, name, why=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}{' (' + why + ')' if why else ''}", flush=True)
    return ok


def skip(name, why):
    global skipped
    skipped += 1
    print(f"SKIP {name} ({why})", flush=True)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def call(sock, method, path, body=None, conn=None, timeout=10, raw_body=None):
    """One request; returns (status, parsed JSON or None, raw text)."""
    own = conn is None
    c = conn or UnixHTTPConnection(sock, timeout)
    headers = {}
    data = None
    if raw_body is not None:
        data = raw_body
    elif body is not None:
        data = json.dumps(body).encode() if not isinstance(body, (bytes, str)) else body
    if isinstance(data, str):
        data = data.encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    text = r.read().decode("utf-8", "replace")
    if own:
        c.close()
    try:
        j = json.loads(text) if text else None
    except ValueError:
        j = None
    return r.status, j, text


def fault(sock, name, method, path, body=None, want="", raw_body=None, status=400):
    """The request must get `status` with a JSON {"fault_message": ...} containing `want`."""
    try:
        st, j, text = call(sock, method, path, body, raw_body=raw_body)
    except Exception as e:  # noqa: BLE001 - any transport error is a failure here
        return report(False, name, f"{type(e).__name__}: {e}")
    fm = j.get("fault_message") if isinstance(j, dict) else None
    ok = st == status and isinstance(fm, str) and want in fm and list(j) == ["fault_message"]
    return report(ok, name, f"{st} {text[:200]!r}, wanted {status} with {want!r}")


def ok_call(sock, name, method, path, body=None, want_status=204):
    try:
        st, j, text = call(sock, method, path, body)
    except Exception as e:  # noqa: BLE001
        report(False, name, f"{type(e).__name__}: {e}")
        return None
    report(st == want_status, name, f"{st} {text[:200]!r}")
    return j


def wait_socket(path, proc, timeout=10):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            return False
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            s.close()
            return True
        except OSError:
            time.sleep(0.01)
    return False


def start_kiln(args, sock=None, **kw):
    kw.setdefault("stdout", subprocess.DEVNULL)
    kw.setdefault("stderr", open(os.path.join(TMP, "kiln-stderr.log"), "ab"))
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen([KILN, "run"] + args, **kw)
    if sock and not wait_socket(sock, p):
        p.kill()
        p.wait()
        return None
    return p


def stop(p, sig=signal.SIGTERM, timeout=20):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


def ctl(sock, *args, stdin=None, timeout=60):
    r = subprocess.run([KILN, "ctl", "--api-sock", sock] + list(args), input=stdin,
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def raw_exchange(sock, data, shut_wr=False, timeout=5):
    """Send raw bytes, read until EOF/timeout; returns the bytes read (b"" if closed)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock)
    try:
        s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            out += b
            if b"\r\n\r\n" in out and shut_wr is False and out.startswith(b"HTTP/"):
                # One answer is enough unless the server also closes.
                pass
        return out
    except (ConnectionResetError, BrokenPipeError):
        return b""
    finally:
        s.close()


def alive(sock):
    try:
        st, j, _ = call(sock, "GET", "/")
        return st == 200 and isinstance(j, dict)
    except Exception:  # noqa: BLE001
        return False


def concurrent(sock, n=200):
    """n connections at once, each GET / after all are open: {served, closed, other, open_s}.

    open_s is how long opening them all took: a connection idle longer than the
    server's timeout (a slow, emulated host) may rightly be closed."""
    conns, res = [], {"served": 0, "closed": 0, "other": 0}
    lock = threading.Lock()
    t0 = time.time()
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(sock)
        conns.append(s)
    barrier = threading.Barrier(n, action=lambda: res.update(open_s=round(time.time() - t0, 1)))

    def one(s):
        barrier.wait()
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                b = s.recv(4096)
                if not b:
                    break
                data += b
            key = "served" if data.startswith(b"HTTP/1.1 200") else ("closed" if not data else "other")
        except (ConnectionResetError, BrokenPipeError):
            key = "closed"
        except Exception:  # noqa: BLE001
            key = "other"
        with lock:
            res[key] += 1
        s.close()

    ts = [threading.Thread(target=one, args=(s,)) for s in conns]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return res


def concurrent_ok(res, n):
    """Every connection served or closed; all served unless some sat idle past the timeout."""
    if res["other"] or res["served"] + res["closed"] != n or not res["served"]:
        return False
    return res["closed"] == 0 or res.get("open_s", 0) >= CONN_TIMEOUT_S - 1


def find_guest():
    cache = os.environ.get("KILN_CACHE", os.path.expanduser("~/.cache/kiln"))
    kernels = sorted(glob.glob(os.path.join(cache, "test-kernel-*", "vmlinux")))
    initrd = os.path.join(cache, "debian-guest", "initramfs.cpio")
    if not kernels or not os.path.exists(initrd):
        return None, None
    return kernels[-1], initrd


# ---------------------------------------------------------------------------
# Part A: no /dev/kvm needed
# ---------------------------------------------------------------------------
def part_a():
    sock = os.path.join(TMP, "api.sock")
    t0 = time.time()
    p = start_kiln(["--api-sock", sock, "--console", "none", "--id", "test-vm-1"], sock)
    if not report(p is not None, "socket comes up"):
        return
    report(os.stat(sock).st_mode & 0o777 == 0o600, "socket is mode 0600",
           oct(os.stat(sock).st_mode & 0o777))
    print(f"# socket ready after {1000 * (time.time() - t0):.1f} ms (wall, incl. exec)")

    # A slow client at the start: half a request, then silence; checked at the end.
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.connect(sock)
    slow.sendall(b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\n{\"vcpu")
    slow_t0 = time.time()

    st, j, text = call(sock, "GET", "/")
    report(st == 200 and j == {"app_name": "kiln", "id": "test-vm-1", "state": "Not started",
                               "vmm_version": j.get("vmm_version") if j else None}
           and isinstance(j.get("vmm_version"), str), "GET / (InstanceInfo)", text)
    st, j, text = call(sock, "GET", "/version")
    report(st == 200 and isinstance(j, dict) and "firecracker_version" in j, "GET /version", text)
    st, j, text = call(sock, "GET", "/machine-config")
    report(st == 200 and j.get("vcpu_count") == 1 and j.get("mem_size_mib") == 128,
           "GET /machine-config defaults (1 vCPU, 128 MiB)", text)

    # Pre-boot configuration.
    ok_call(sock, "PUT /machine-config", "PUT", "/machine-config",
            {"vcpu_count": 2, "mem_size_mib": 256})
    ok_call(sock, "PATCH /machine-config", "PATCH", "/machine-config", {"mem_size_mib": 512})
    st, j, text = call(sock, "GET", "/machine-config")
    report(st == 200 and j.get("vcpu_count") == 2 and j.get("mem_size_mib") == 512,
           "GET /machine-config after PUT + PATCH", text)
    kernel = os.path.join(TMP, "kernel")
    with open(kernel, "wb") as f:
        f.write(b"\x7fELF not really")
    ok_call(sock, "PUT /boot-source", "PUT", "/boot-source",
            {"kernel_image_path": kernel, "boot_args": "console=ttyS0"})
    disk = os.path.join(TMP, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    ok_call(sock, "PUT /drives/rootfs", "PUT", "/drives/rootfs",
            {"drive_id": "rootfs", "path_on_host": disk, "is_root_device": True,
             "is_read_only": False})
    ok_call(sock, "PUT /drives/data (second drive)", "PUT", "/drives/data",
            {"drive_id": "data", "path_on_host": disk, "is_root_device": False,
             "is_read_only": True, "io_engine": "Sync"})
    log = os.path.join(TMP, "kiln.log")
    ok_call(sock, "PUT /logger", "PUT", "/logger",
            {"log_path": log, "level": "debug", "show_level": True, "show_log_origin": True})
    metrics = os.path.join(TMP, "metrics.json")
    ok_call(sock, "PUT /metrics", "PUT", "/metrics", {"metrics_path": metrics})
    ok_call(sock, "PUT /entropy", "PUT", "/entropy", {})
    st, j, text = call(sock, "GET", "/vm/config")
    good = (st == 200 and isinstance(j, dict) and j.get("boot-source", {}).get("kernel_image_path") == kernel
            and [d.get("drive_id") for d in j.get("drives", [])] == ["rootfs", "data"]
            and j.get("machine-config", {}).get("mem_size_mib") == 512
            and j.get("logger", {}).get("log_path") == log
            and j.get("metrics", {}).get("metrics_path") == metrics
            and j.get("entropy") == {} and j.get("network-interfaces") == [])
    report(good, "GET /vm/config reflects the PUTs", text[:300])
    vmconfig = j if good else None

    # Faults: each a 4xx with {"fault_message": ...} only.
    fault(sock, "malformed JSON", "PUT", "/machine-config", raw_body=b'{"vcpu_count": 2,', want="Malformed JSON")
    fault(sock, "trailing garbage", "PUT", "/machine-config", raw_body=b'{"vcpu_count":1,"mem_size_mib":128} x', want="Malformed JSON")
    fault(sock, "wrong type (string for integer)", "PUT", "/machine-config",
          {"vcpu_count": "2", "mem_size_mib": 128}, want="vcpu_count")
    fault(sock, "wrong type (real for integer)", "PUT", "/machine-config",
          raw_body=b'{"vcpu_count": 2.0, "mem_size_mib": 128}', want="vcpu_count")
    fault(sock, "unknown field", "PUT", "/machine-config",
          {"vcpu_count": 1, "mem_size_mib": 128, "turbo": True}, want="turbo")
    fault(sock, "missing required field", "PUT", "/boot-source", {"boot_args": "x"},
          want="kernel_image_path")
    fault(sock, "out of range", "PUT", "/machine-config", {"vcpu_count": 33, "mem_size_mib": 128},
          want="vcpu_count")
    fault(sock, "bad ID characters", "PUT", "/drives/bad.id",
          {"drive_id": "bad.id", "path_on_host": disk, "is_root_device": False},
          want="alphanumeric")
    fault(sock, "path ID != body ID", "PUT", "/drives/one",
          {"drive_id": "two", "path_on_host": disk, "is_root_device": False},
          want="does not match")
    fault(sock, "second root device", "PUT", "/drives/other",
          {"drive_id": "other", "path_on_host": disk, "is_root_device": True},
          want="root block device already exists")
    fault(sock, "missing drive file", "PUT", "/drives/gone",
          {"drive_id": "gone", "path_on_host": TMP + "/nope", "is_root_device": False},
          want="No such file")
    fault(sock, "missing kernel file", "PUT", "/boot-source", {"kernel_image_path": TMP + "/nope"},
          want="No such file")
    fault(sock, "duplicate key", "PUT", "/machine-config",
          raw_body=b'{"vcpu_count":1,"vcpu_count":2,"mem_size_mib":128}', want="")
    fault(sock, "invalid UTF-8", "PUT", "/boot-source",
          raw_body=b'{"kernel_image_path":"/\xff\xfe"}', want="")
    fault(sock, "nesting too deep", "PUT", "/mmds", raw_body=b'{"a":' * 40 + b"1" + b"}" * 40,
          want="nested")
    fault(sock, "empty PUT body", "PUT", "/machine-config", raw_body=b"", want="Empty")
    fault(sock, "GET with a body", "GET", "/", raw_body=b"{}", want="cannot have a body")
    fault(sock, "unknown path", "GET", "/nope", want="Invalid request method and/or path")
    fault(sock, "wrong method", "PATCH", "/", want="Invalid request method and/or path")
    fault(sock, "endpoint kiln lacks (vsock)", "PUT", "/vsock",
          {"guest_cid": 3, "uds_path": "/tmp/v"}, want="does not implement")
    fault(sock, "unsupported setting refused (smt)", "PUT", "/machine-config",
          {"vcpu_count": 2, "mem_size_mib": 128, "smt": True}, want="smt")
    fault(sock, "rate limiter refused", "PUT", "/entropy",
          {"rate_limiter": {"bandwidth": {"size": 1, "refill_time": 1}}}, want="rate limiter")
    fault(sock, "PATCH /vm before boot", "PATCH", "/vm", {"state": "Paused"},
          want="not supported before starting")
    mmds_store_checks(sock, "mmds: ")
    fault(sock, "SendCtrlAltDel before boot", "PUT", "/actions", {"action_type": "SendCtrlAltDel"},
          want="not supported before starting")
    fault(sock, "PATCH /drives before boot", "PATCH", "/drives/rootfs",
          {"drive_id": "rootfs", "path_on_host": disk}, want="not supported before starting")
    fault(sock, "bad action_type", "PUT", "/actions", {"action_type": "Explode"}, want="action_type")
    big = b'{"kernel_image_path":"' + b"a" * (MAX_BODY + 10) + b'"}'
    try:
        st, j, text = call(sock, "PUT", "/boot-source", raw_body=big)
        report(st == 400 and "larger than the limit" in (j or {}).get("fault_message", ""),
               "body over 64 KiB", f"{st} {text[:120]!r}")
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
        report(True, "body over 64 KiB (connection closed)")
    # A chunked body over the limit has no Content-Length to refuse early: closed.
    chunk = b"%x\r\n" % (MAX_BODY + 100) + b"a" * (MAX_BODY + 100) + b"\r\n0\r\n\r\n"
    out = raw_exchange(sock, b"PUT /mmds HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)
    report(out == b"" or out.startswith(b"HTTP/1.1 4"), "chunked body over 64 KiB: 4xx or closed",
           repr(out[:80]))

    # FlushMetrics writes a JSON line; the logger file has lines in Firecracker's format.
    ok_call(sock, "FlushMetrics", "PUT", "/actions", {"action_type": "FlushMetrics"})
    try:
        lines = open(metrics).read().splitlines()
        m = json.loads(lines[-1])
        ep = m["api"]["endpoints"]
        good = (m["state"] == "Not started" and m["api"]["requests"]["count"] > 20
                and ep["GET /"]["count"] >= 1 and ep["PUT /machine-config"]["errors"] >= 3
                and m["api"]["requests"]["p99_us"] >= m["api"]["requests"]["p50_us"])
        report(good, "metrics line: state, request counts, latencies", lines[-1][:300])
    except (OSError, ValueError, KeyError, IndexError) as e:
        report(False, "metrics line: state, request counts, latencies", repr(e))
    try:
        text = open(log).read()
        good = re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9} \[test-vm-1:kiln-api:INFO:src/api/api_vmm\.c:\d+\] api: PUT /metrics -> 204$",
                         text, re.M)
        report(bool(good), "logger file: timestamp [id:thread:level:origin] message", text[:300])
    except OSError as e:
        report(False, "logger file: timestamp [id:thread:level:origin] message", repr(e))

    # Keep-alive: several requests on one connection.
    c = UnixHTTPConnection(sock)
    try:
        sts = [call(sock, "GET", "/", conn=c)[0] for _ in range(3)]
        st2 = call(sock, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 512}, conn=c)[0]
        report(sts == [200] * 3 and st2 == 204, "keep-alive: 4 requests, one connection", str(sts))
    except Exception as e:  # noqa: BLE001
        report(False, "keep-alive: 4 requests, one connection", repr(e))
    finally:
        c.close()

    # Robustness: garbage, half-closed, half-sent then gone.
    out = raw_exchange(sock, b"\x00\xffgarbage\r\n\r\n")
    report(out == b"" or out.startswith(b"HTTP/1.1 4"), "garbage request line: 4xx or closed", repr(out[:60]))
    out = raw_exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", shut_wr=True)
    report(out == b"" or out.startswith(b"HTTP/1.1 200"), "half-closed client: served or closed", repr(out[:60]))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(b"PUT /boot-source HTTP/1.1\r\nContent-Le")
    s.close()
    out = raw_exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 40000 + b"\r\n\r\n")
    report(out == b"" or out.startswith(b"HTTP/1.1 4"), "40 KB header: 4xx or closed", repr(out[:60]))
    res = concurrent(sock, 200)
    report(concurrent_ok(res, 200), "200 concurrent connections: served or closed", str(res))
    report(alive(sock), "VMM answers after the robustness list")

    # The slow client is closed after the idle timeout; others were served meanwhile.
    slow.settimeout(CONN_TIMEOUT_S + 5 - min(CONN_TIMEOUT_S, time.time() - slow_t0))
    try:
        data = slow.recv(4096)
        report(data == b"" or data.startswith(b"HTTP/1.1 4"),
               f"slow client closed after ~{CONN_TIMEOUT_S} s idle",
               f"after {time.time() - slow_t0:.1f} s: {data[:60]!r}")
    except socket.timeout:
        report(False, f"slow client closed after ~{CONN_TIMEOUT_S} s idle", "still open")
    except ConnectionResetError:
        report(True, f"slow client closed after ~{CONN_TIMEOUT_S} s idle")
    slow.close()

    # kiln ctl.
    rc, out, err = ctl(sock, "info")
    report(rc == 0 and json.loads(out).get("state") == "Not started", "ctl info", f"{rc} {out} {err}")
    rc, out, err = ctl(sock, "get", "/machine-config")
    report(rc == 0 and json.loads(out).get("vcpu_count") == 2, "ctl get PATH", f"{rc} {out} {err}")
    rc, out, err = ctl(sock, "put", "/machine-config", '{"vcpu_count":1,"mem_size_mib":64}')
    report(rc == 0 and out == "", "ctl put PATH JSON", f"{rc} {out} {err}")
    rc, out, err = ctl(sock, "patch", "/machine-config", "-", stdin='{"vcpu_count":2}')
    report(rc == 0, "ctl patch PATH - (body from stdin)", f"{rc} {out} {err}")
    rc, out, err = ctl(sock, "config")
    report(rc == 0 and json.loads(out)["machine-config"]["mem_size_mib"] == 64, "ctl config", f"{rc} {err}")
    rc, out, err = ctl(sock, "metrics")
    report(rc == 0, "ctl metrics (FlushMetrics)", f"{rc} {err}")
    rc, out, err = ctl(sock, "pause")
    report(rc == 1 and "not supported before starting" in err, "ctl pause before boot: refused (exit 1)",
           f"{rc} {err}")
    rc, out, err = ctl(sock, "put", "/machine-config", "{bad")
    report(rc == 1 and "Malformed JSON" in err, "ctl put bad JSON: fault on stderr", f"{rc} {err}")
    rc, out, err = ctl(TMP + "/nosock", "info")
    report(rc == 3 and "No such file" in err, "ctl without a server: exit 3", f"{rc} {err}")
    rc, out, err = ctl(sock, "frobnicate")
    report(rc == 2 and "unknown verb" in err, "ctl unknown verb: exit 2", f"{rc} {err}")

    # The socket: a second kiln on it is refused, a regular file is not replaced.
    r = subprocess.run([KILN, "run", "--api-sock", sock], capture_output=True, text=True, timeout=10)
    report(r.returncode == 2 and "in use" in r.stderr, "socket in use: clear error, exit 2",
           f"{r.returncode} {r.stderr.strip()}")
    plain = os.path.join(TMP, "plain")
    open(plain, "w").close()
    r = subprocess.run([KILN, "run", "--api-sock", plain], capture_output=True, text=True, timeout=10)
    report(r.returncode == 2 and "not a socket" in r.stderr and os.path.isfile(plain),
           "a regular file is not replaced: exit 2", f"{r.returncode} {r.stderr.strip()}")

    # SIGTERM before boot: 128+15, socket removed.
    rc = stop(p)
    report(rc == 143 and not os.path.exists(sock), "SIGTERM before boot: exit 143, socket removed",
           f"rc {rc}, exists {os.path.exists(sock)}")

    # A stale socket (bound, nobody listening) is replaced.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock)
    stale.close()
    p = start_kiln(["--api-sock", sock, "--console", "none"], sock)
    report(p is not None and alive(sock), "stale socket file replaced")
    if p:
        stop(p)

    # --config-file: GET /vm/config's shape is accepted; bad ones get one clear line, exit 2.
    if vmconfig:
        cfgf = os.path.join(TMP, "vm.json")
        vmconfig["boot-source"]["kernel_image_path"] = kernel
        json.dump(vmconfig, open(cfgf, "w"))
        r = subprocess.run([KILN, "run", "--config-file", cfgf, "--no-api", "--console", "none"],
                           capture_output=True, text=True, timeout=20)
        # Every member is applied (the logger's file gets the start), then the boot itself fails
        # on the fake kernel: exactly one line on stderr, from the kernel check.
        lines = r.stderr.strip().splitlines()
        logged = open(log).read()
        report(r.returncode == 2 and len(lines) == 1 and "not an ELF" in lines[0]
               and "PUT /entropy -> 204" in logged and ":ERROR:" in logged.splitlines()[-1],
               "--config-file with GET /vm/config's JSON is loaded", f"{r.returncode} {r.stderr.strip()}")
    for name, content, want in [
        ("malformed", "{", "malformed JSON"),
        ("unknown member", '{"boot-source":{"kernel_image_path":"/x"},"turbo":1}', "unknown member"),
        ("bad drive", '{"boot-source":{"kernel_image_path":"%s"},"drives":[{"drive_id":"a"}]}' % kernel,
         "drives[0] a"),
        ("lacking device", '{"boot-source":{"kernel_image_path":"%s"},"vsock":{"guest_cid":3,"uds_path":"/x"}}' % kernel,
         "vsock"),
        ("no boot source", '{"machine-config":{"vcpu_count":1,"mem_size_mib":128}}', "kernel configuration"),
        ("missing tap", '{"boot-source":{"kernel_image_path":"%s"},"network-interfaces":[{"iface_id":"eth0",'
         '"host_dev_name":"kilnnope0"}]}' % kernel, "network-interfaces[0] eth0: Could not create the network device"),
        ("mmds-config naming no interface", '{"boot-source":{"kernel_image_path":"%s"},'
         '"mmds-config":{"network_interfaces":["eth0"]}}' % kernel, "mmds-config: The list of network interface IDs"),
    ]:
        f = os.path.join(TMP, "bad.json")
        open(f, "w").write(content)
        r = subprocess.run([KILN, "run", "--config-file", f, "--no-api"], capture_output=True,
                           text=True, timeout=20)
        lines = r.stderr.strip().splitlines()
        report(r.returncode == 2 and len(lines) == 1 and want in lines[0],
               f"--config-file {name}: one line, exit 2", f"{r.returncode} {r.stderr.strip()}")
    r = subprocess.run([KILN, "run", "--no-api"], capture_output=True, text=True, timeout=10)
    report(r.returncode == 2 and "--no-api needs --config-file" in r.stderr, "--no-api alone: exit 2",
           r.stderr.strip())
    r = subprocess.run([KILN, "run", "--no-api", "--api-sock", sock], capture_output=True, text=True, timeout=10)
    report(r.returncode == 2 and "exclude" in r.stderr, "--no-api with --api-sock: exit 2", r.stderr.strip())


# ---------------------------------------------------------------------------
# Network interfaces and MMDS (no /dev/kvm: everything before boot)
# ---------------------------------------------------------------------------
def netns_up(ns, tap, addr=None):
    """A network namespace with a tap in it (root, ip, /dev/net/tun); False when that cannot be had."""
    if os.geteuid() != 0:
        return False
    if not os.path.exists("/dev/net/tun"):
        # The KVM lab's fresh /dev has no tun node until the module is in (as tests/linux/run.sh).
        subprocess.run(["modprobe", "tun"], capture_output=True)
        if not os.path.exists("/dev/net/tun"):
            subprocess.run("mkdir -p /dev/net && mknod /dev/net/tun c 10 200", shell=True, capture_output=True)
        if not os.path.exists("/dev/net/tun"):
            return False
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    cmds = [["ip", "netns", "add", ns], ["ip", "-n", ns, "link", "set", "lo", "up"],
            ["ip", "-n", ns, "tuntap", "add", tap, "mode", "tap"], ["ip", "-n", ns, "link", "set", tap, "up"]]
    if addr:
        cmds.append(["ip", "-n", ns, "addr", "add", addr, "dev", tap])
    for c in cmds:
        try:
            if subprocess.run(c, capture_output=True).returncode:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
                return False
        except OSError:
            return False
    return True


def netns_down(ns):
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def mmds_store_checks(sock, prefix=""):
    """PUT/PATCH/GET /mmds: round trip, RFC 7396 merge with null deletion, the size limit."""
    st, j, text = call(sock, "GET", "/mmds")
    report(st == 200 and j == {}, prefix + "GET /mmds: {} before any PUT", text)
    fault(sock, prefix + "PATCH /mmds before PUT: not initialized", "PATCH", "/mmds", {"a": 1},
          want="not initialized")
    fault(sock, prefix + "PUT /mmds with an array", "PUT", "/mmds", raw_body=b"[1]", want="expected a JSON object")
    fault(sock, prefix + "PUT /mmds with bad JSON", "PUT", "/mmds", raw_body=b'{"a":', want="Malformed JSON")
    data = {"latest": {"meta-data": {"ami-id": "ami-1", "hostname": "h1"}}, "app": {"colour": "blue", "n": 1}}
    ok_call(sock, prefix + "PUT /mmds", "PUT", "/mmds", data)
    st, j, text = call(sock, "GET", "/mmds")
    report(st == 200 and j == data, prefix + "GET /mmds returns what PUT stored", text)
    ok_call(sock, prefix + "PATCH /mmds (merge, null deletes)", "PATCH", "/mmds",
            {"app": {"colour": None, "size": "L"}, "latest": None, "new": [1, 2]})
    st, j, text = call(sock, "GET", "/mmds")
    report(st == 200 and j == {"app": {"n": 1, "size": "L"}, "new": [1, 2]},
           prefix + "GET /mmds after the merge patch (RFC 7396)", text)
    limit = 51200
    over = '{"k":"' + "x" * (limit - 7) + '"}'        # limit + 1 bytes, compact
    fault(sock, prefix + "PUT /mmds over 51200 bytes: 413", "PUT", "/mmds", raw_body=over.encode(),
          want="doesn't fit", status=413)
    exact = '{"k":"' + "x" * (limit - 8) + '"}'
    ok_call(sock, prefix + "PUT /mmds of exactly 51200 bytes", "PUT", "/mmds", exact.encode())
    fault(sock, prefix + "PATCH /mmds past the limit: 413", "PATCH", "/mmds", {"more": "y"},
          want="doesn't fit", status=413)
    st, j, text = call(sock, "GET", "/mmds")
    report(st == 200 and text == exact, prefix + "a refused PATCH leaves the store as it was", text[:80])


def part_a_net():
    sock = os.path.join(TMP, "net.sock")
    ns = f"kiln-api-{os.getpid()}"
    have_tap = netns_up(ns, "kt0")
    md = os.path.join(TMP, "md.json")
    json.dump({"hostname": "from-file", "app": {"port": "80"}}, open(md, "w"))
    args = ["--api-sock", sock, "--console", "none", "--metadata", md]
    p = start_kiln(args, sock) if not have_tap else None
    if have_tap:
        kw = {"stdout": subprocess.DEVNULL, "stdin": subprocess.DEVNULL,
              "stderr": open(os.path.join(TMP, "kiln-stderr.log"), "ab")}
        p = subprocess.Popen(["ip", "netns", "exec", ns, KILN, "run"] + args, **kw)
        if not wait_socket(sock, p):
            stop(p)
            p = None
    if not report(p is not None, "net: socket comes up" + (" (kiln in a netns with tap kt0)" if have_tap else "")):
        netns_down(ns)
        return
    try:
        # --metadata seeds the store (Firecracker's flag): GET shows it, PATCH needs no PUT.
        st, j, text = call(sock, "GET", "/mmds")
        report(st == 200 and j == {"hostname": "from-file", "app": {"port": "80"}},
               "net: --metadata seeds the MMDS store", text)
        ok_call(sock, "net: PATCH /mmds on the seeded store", "PATCH", "/mmds", {"app": {"port": "8080"}})
        st, j, text = call(sock, "GET", "/mmds")
        report(st == 200 and j == {"hostname": "from-file", "app": {"port": "8080"}},
               "net: GET /mmds after PATCH of the seeded store", text)

        fault(sock, "net: PUT /network-interfaces without host_dev_name", "PUT", "/network-interfaces/eth0",
              {"iface_id": "eth0"}, want="host_dev_name")
        fault(sock, "net: bad host_dev_name", "PUT", "/network-interfaces/eth0",
              {"iface_id": "eth0", "host_dev_name": "a/b"}, want="host_dev_name")
        fault(sock, "net: bad guest_mac", "PUT", "/network-interfaces/eth0",
              {"iface_id": "eth0", "host_dev_name": "kt0", "guest_mac": "zz:00:00:00:00:01"}, want="guest_mac")
        fault(sock, "net: path id != iface_id", "PUT", "/network-interfaces/eth0",
              {"iface_id": "eth1", "host_dev_name": "kt0"}, want="does not match")
        fault(sock, "net: unknown field", "PUT", "/network-interfaces/eth0",
              {"iface_id": "eth0", "host_dev_name": "kt0", "allow_mmds_requests": True}, want="unknown field")
        fault(sock, "net: tap that does not exist", "PUT", "/network-interfaces/eth0",
              {"iface_id": "eth0", "host_dev_name": "kilnnope0"}, want="no host interface kilnnope0")
        fault(sock, "net: an interface that is no tap (lo)", "PUT", "/network-interfaces/eth0",
              {"iface_id": "eth0", "host_dev_name": "lo"}, want="not a tap device")
        fault(sock, "net: rate limiter refused", "PUT", "/network-interfaces/eth0",
              {"iface_id": "eth0", "host_dev_name": "kt0",
               "rx_rate_limiter": {"bandwidth": {"size": 1000000, "refill_time": 100}}},
              want="does not support rate limiters")
        fault(sock, "net: PATCH /network-interfaces before boot", "PATCH", "/network-interfaces/eth0",
              {"iface_id": "eth0", "rx_rate_limiter": {}}, want="not supported before starting")
        fault(sock, "net: PUT /mmds/config naming an unknown interface", "PUT", "/mmds/config",
              {"network_interfaces": ["eth0"]}, want="does not correspond to any existing network interface")
        fault(sock, "net: PUT /mmds/config with no interface", "PUT", "/mmds/config",
              {"network_interfaces": []}, want="is empty")
        fault(sock, "net: PUT /mmds/config with a non-link-local address", "PUT", "/mmds/config",
              {"network_interfaces": ["eth0"], "ipv4_address": "10.0.0.1"}, want="link-local")
        if have_tap:
            ok_call(sock, "net: PUT /network-interfaces/eth0 (tap kt0)", "PUT", "/network-interfaces/eth0",
                    {"iface_id": "eth0", "host_dev_name": "kt0", "guest_mac": "02:00:00:00:00:01",
                     "rx_rate_limiter": {"bandwidth": {"size": 0, "refill_time": 0}}})
            fault(sock, "net: a second interface on the same tap", "PUT", "/network-interfaces/eth1",
                  {"iface_id": "eth1", "host_dev_name": "kt0"}, want="already used by interface eth0")
            ok_call(sock, "net: PUT /mmds/config", "PUT", "/mmds/config",
                    {"network_interfaces": ["eth0"], "version": "V2", "ipv4_address": "169.254.170.2"})
            st, j, text = call(sock, "GET", "/vm/config")
            report(st == 200 and j.get("network-interfaces") == [
                       {"iface_id": "eth0", "host_dev_name": "kt0", "guest_mac": "02:00:00:00:00:01"}]
                   and j.get("mmds-config") == {"version": "V2", "network_interfaces": ["eth0"],
                                                "ipv4_address": "169.254.170.2", "imds_compat": False},
                   "net: GET /vm/config has network-interfaces and mmds-config", text[:400])
        else:
            skip("net: PUT /network-interfaces with a real tap", "needs root, ip and /dev/net/tun")
    finally:
        stop(p)
        netns_down(ns)


# ---------------------------------------------------------------------------
# Network interfaces and MMDS on a running guest (/dev/kvm, root for the tap)
# ---------------------------------------------------------------------------
def part_b_net():
    kernel, initrd = find_guest()
    if not kernel:
        skip("kvm-net part", "no test kernel / initramfs in ~/.cache/kiln")
        return
    ns = f"kiln-apinet-{os.getpid()}"
    if not netns_up(ns, "kt0", "192.168.78.1/24"):
        skip("kvm-net part", "needs root, ip and /dev/net/tun for a tap in a namespace")
        return
    boot_timeout = int(os.environ.get("KILN_API_BOOT_TIMEOUT", "240"))
    sock = os.path.join(TMP, "netvm.sock")
    con = os.path.join(TMP, "net-console.log")
    conf = open(con, "wb")
    p = subprocess.Popen(["ip", "netns", "exec", ns, KILN, "run", "--api-sock", sock],
                         stdin=subprocess.PIPE, stdout=conf,
                         stderr=open(os.path.join(TMP, "kiln-stderr.log"), "ab"))
    if not report(wait_socket(sock, p), "kvm-net: socket comes up (kiln in a netns)"):
        stop(p, signal.SIGKILL)
        netns_down(ns)
        return

    def guest(cmd, key, timeout=60):
        """Run cmd in the guest's shell; the text between KEY= and END, or None."""
        p.stdin.write(f"echo {key}=$({cmd}) END\n".encode())
        p.stdin.flush()
        # [^$]: not the shell's echo of the command line itself, whose KEY= is followed by "$(".
        m = wait_for(lambda: re.search(key.encode() + rb"=([^$\r\n]*?) END", open(con, "rb").read()), timeout, 0.2)
        return m.group(1).decode(errors="replace") if m else None

    try:
        # Everything through the API: boot source, a tap interface, MMDS on it, the data.
        ok_call(sock, "kvm-net: PUT /boot-source", "PUT", "/boot-source",
                {"kernel_image_path": kernel, "initrd_path": initrd,
                 "boot_args": "console=ttyS0 reboot=k panic=-1 ip=192.168.78.2::192.168.78.1:255.255.255.0::eth0:off"})
        ok_call(sock, "kvm-net: PUT /network-interfaces/eth0", "PUT", "/network-interfaces/eth0",
                {"iface_id": "eth0", "host_dev_name": "kt0", "guest_mac": "02:00:00:00:00:02"})
        ok_call(sock, "kvm-net: PUT /mmds/config", "PUT", "/mmds/config", {"network_interfaces": ["eth0"]})
        ok_call(sock, "kvm-net: PUT /mmds", "PUT", "/mmds", {"kiln": {"colour": "blue", "size": "9"}})
        ok_call(sock, "kvm-net: InstanceStart", "PUT", "/actions", {"action_type": "InstanceStart"})
        seen = wait_for(lambda: b"shell on the console" in open(con, "rb").read(), boot_timeout, 0.5)
        if not report(bool(seen), "kvm-net: guest shell up", f"console: {open(con, 'rb').read()[-300:]!r}"):
            return
        time.sleep(1)
        mac = guest("cat /sys/class/net/eth0/address", "MAC")
        report(mac == "02:00:00:00:00:02", "kvm-net: the guest's eth0 has guest_mac", str(mac))
        wget = "timeout 20 wget -q -O - http://169.254.169.254/kiln/colour"
        got = guest(wget, "MDS1")
        report(got == "blue", "kvm-net: the guest reads MMDS data PUT before boot", str(got))
        # After boot: PATCH and PUT reach the guest's next GET.
        ok_call(sock, "kvm-net: PATCH /mmds after boot", "PATCH", "/mmds", {"kiln": {"colour": "green"}})
        got = guest(wget, "MDS2")
        report(got == "green", "kvm-net: the guest sees the PATCH", str(got))
        ok_call(sock, "kvm-net: PATCH /mmds deleting a key", "PATCH", "/mmds", {"kiln": {"colour": None}})
        got = guest(wget + " || echo gone; timeout 20 wget -q -O - http://169.254.169.254/kiln/size", "MDS3")
        report(got == "gone 9", "kvm-net: a key deleted by PATCH is gone for the guest", str(got))
        ok_call(sock, "kvm-net: PUT /mmds after boot", "PUT", "/mmds", {"other": "x"})
        got = guest("timeout 20 wget -q -O - http://169.254.169.254/other", "MDS4")
        report(got == "x", "kvm-net: the guest sees the PUT", str(got))
        st, j, text = call(sock, "GET", "/mmds")
        report(st == 200 and j == {"other": "x"}, "kvm-net: GET /mmds after boot", text)
        # Post-boot refusals.
        fault(sock, "kvm-net: PUT /network-interfaces after boot", "PUT", "/network-interfaces/eth1",
              {"iface_id": "eth1", "host_dev_name": "kt0"}, want="not supported after starting")
        fault(sock, "kvm-net: PUT /mmds/config after boot", "PUT", "/mmds/config",
              {"network_interfaces": ["eth0"]}, want="not supported after starting")
        fault(sock, "kvm-net: PATCH an unknown interface", "PATCH", "/network-interfaces/eth7",
              {"iface_id": "eth7", "rx_rate_limiter": {}}, want="no interface eth7")
        fault(sock, "kvm-net: PATCH rate limiters refused", "PATCH", "/network-interfaces/eth0",
              {"iface_id": "eth0", "tx_rate_limiter": {"ops": {"size": 10, "refill_time": 1000}}},
              want="does not support rate limiters")
        # The tap works both ways: the namespace pings the guest.
        r = subprocess.run(["ip", "netns", "exec", ns, "busybox", "ping", "-c", "2", "-W", "5", "192.168.78.2"],
                           capture_output=True, text=True, timeout=30)
        report(r.returncode == 0, "kvm-net: the namespace pings the guest over the API's tap", r.stdout[-200:])
        p.stdin.write(b"poweroff -f\n")
        p.stdin.flush()
        try:
            code = p.wait(60)
        except subprocess.TimeoutExpired:
            code = None
        report(code == 0, "kvm-net: guest powers off, kiln exits 0", f"exit {code}")
    finally:
        if p.poll() is None:
            stop(p, signal.SIGKILL)
        conf.close()
        netns_down(ns)


# ---------------------------------------------------------------------------
# Part B: /dev/kvm (the KVM lab)
# ---------------------------------------------------------------------------
def wait_for(pred, timeout, step=0.1):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def ticks(path):
    try:
        found = re.findall(rb"tick (\d+)", open(path, "rb").read())
        return int(found[-1]) if found else 0
    except OSError:
        return 0


def part_b():
    kernel, initrd = find_guest()
    if not kernel:
        if os.environ.get("KILN_REQUIRE_KVM") == "1":
            report(False, "KVM part", "no test kernel / initramfs in the cache")
        else:
            skip("KVM part", "no test kernel / initramfs in ~/.cache/kiln")
        return
    boot_timeout = int(os.environ.get("KILN_API_BOOT_TIMEOUT", "240"))
    sock = os.path.join(TMP, "vm.sock")
    con = os.path.join(TMP, "console.log")
    metrics = os.path.join(TMP, "vm-metrics.json")
    conf = open(con, "wb")
    # The console on stdio: the guest's shell reads what we write to kiln's stdin.
    p = start_kiln(["--api-sock", sock], sock, stdin=subprocess.PIPE, stdout=conf)
    if not report(p is not None, "kvm: socket comes up"):
        return
    try:
        ok_call(sock, "kvm: PUT /boot-source", "PUT", "/boot-source",
                {"kernel_image_path": kernel, "initrd_path": initrd,
                 "boot_args": "console=ttyS0 reboot=k panic=-1"})
        ok_call(sock, "kvm: PUT /machine-config", "PUT", "/machine-config",
                {"vcpu_count": 2, "mem_size_mib": 256})
        ok_call(sock, "kvm: PUT /metrics", "PUT", "/metrics", {"metrics_path": metrics})
        disk = os.path.join(TMP, "vm-disk.img")
        with open(disk, "wb") as f:
            f.truncate(4 << 20)
        ok_call(sock, "kvm: PUT /drives/rootfs", "PUT", "/drives/rootfs",
                {"drive_id": "rootfs", "path_on_host": disk, "is_root_device": True, "is_read_only": True})
        ok_call(sock, "kvm: PUT /entropy", "PUT", "/entropy", {})
        t0 = time.time()
        ok_call(sock, "kvm: InstanceStart", "PUT", "/actions", {"action_type": "InstanceStart"})
        st, j, _ = call(sock, "GET", "/")
        report(st == 200 and j["state"] == "Running", "kvm: GET / says Running", str(j))
        seen = wait_for(lambda: b"Run /init" in open(con, "rb").read(), boot_timeout, 0.5)
        if not report(bool(seen), "kvm: guest reaches \"Run /init\"", f"console: {open(con, 'rb').read()[-300:]!r}"):
            return
        print(f"# Run /init after {time.time() - t0:.1f} s")
        wait_for(lambda: b"shell on the console" in open(con, "rb").read(), 60, 0.5)
        time.sleep(1)
        # The drive is vda with its drive_id as serial, read-only; the root device is on the
        # command line; PUT /entropy gave a virtio-rng.
        p.stdin.write(b"echo CHECK serial=$(cat /sys/block/vda/serial) ro=$(cat /sys/block/vda/ro) "
                      b"rng=$(cat /sys/devices/virtual/misc/hw_random/rng_current) END; cat /proc/cmdline\n")
        p.stdin.flush()
        got = wait_for(lambda: re.search(rb"CHECK serial=(\S*) ro=(\S*) rng=(\S*) END", open(con, "rb").read()), 60, 0.2)
        text = open(con, "rb").read()
        report(bool(got) and got.group(1) == b"rootfs" and got.group(2) == b"1"
               and got.group(3).startswith(b"virtio_rng"),
               "kvm: drive is vda (serial = drive_id, read-only), entropy is virtio-rng",
               repr(got.group(0) if got else text[-300:]))
        report(b"root=/dev/vda ro" in text, "kvm: root device on the kernel command line", repr(text[-300:]))
        p.stdin.write(b"i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done\n")
        p.stdin.flush()
        got = wait_for(lambda: ticks(con) >= 3, 60, 0.2)
        if not report(bool(got), "kvm: guest counter runs", f"console: {open(con, 'rb').read()[-300:]!r}"):
            return

        # Pause: the counter stops; vCPU exits stop.
        ok_call(sock, "kvm: PATCH /vm Paused", "PATCH", "/vm", {"state": "Paused"})
        st, j, _ = call(sock, "GET", "/")
        report(j and j["state"] == "Paused", "kvm: GET / says Paused", str(j))
        ok_call(sock, "kvm: pausing again is a no-op", "PATCH", "/vm", {"state": "Paused"})
        time.sleep(0.3)
        n1 = ticks(con)
        ok_call(sock, "kvm: FlushMetrics while paused", "PUT", "/actions", {"action_type": "FlushMetrics"})
        time.sleep(2)
        ok_call(sock, "kvm: FlushMetrics again", "PUT", "/actions", {"action_type": "FlushMetrics"})
        n2 = ticks(con)
        report(n1 == n2 and n1 > 0, "kvm: counter stands still while paused", f"{n1} -> {n2}")
        try:
            a, b = [json.loads(x) for x in open(metrics).read().splitlines()[-2:]]
            ea = [v["exits_total"] for v in a["vcpus"]]
            eb = [v["exits_total"] for v in b["vcpus"]]
            report(len(ea) == 2 and ea == eb and a["state"] == "Paused",
                   "kvm: metrics: 2 vCPUs, no exits while paused", f"{ea} {eb}")
            report(b["devices"].get("uart", {}).get("tx", 0) > 0 and "io" in b["vcpus"][0]["exits"],
                   "kvm: metrics: per-reason exits and device counters",
                   json.dumps(b)[:300])
        except (OSError, ValueError, KeyError) as e:
            report(False, "kvm: metrics: 2 vCPUs, no exits while paused", repr(e))
        # The API and the robustness list while paused and running.
        res = concurrent(sock, 200)
        report(concurrent_ok(res, 200), "kvm: 200 concurrent connections while paused", str(res))

        ok_call(sock, "kvm: PATCH /vm Resumed", "PATCH", "/vm", {"state": "Resumed"})
        got = wait_for(lambda: ticks(con) > n2 + 2, 60, 0.2)
        report(bool(got), "kvm: counter goes on after resume", f"{n2} -> {ticks(con)}")

        # kiln ctl against a running VM.
        rc, out, err = ctl(sock, "info")
        report(rc == 0 and json.loads(out)["state"] == "Running", "kvm: ctl info", f"{rc} {out} {err}")
        rc, _, err = ctl(sock, "pause")
        n3 = ticks(con)
        time.sleep(1)
        report(rc == 0 and ticks(con) == n3, "kvm: ctl pause", f"{rc} {err} {n3} -> {ticks(con)}")
        rc, _, err = ctl(sock, "resume")
        report(rc == 0 and bool(wait_for(lambda: ticks(con) > n3 + 1, 60, 0.2)), "kvm: ctl resume", f"{rc} {err}")
        rc, _, err = ctl(sock, "metrics")
        report(rc == 0, "kvm: ctl metrics", f"{rc} {err}")
        rc, out, err = ctl(sock, "config")
        report(rc == 0 and json.loads(out)["machine-config"]["vcpu_count"] == 2, "kvm: ctl config", f"{rc} {err}")

        # Post-boot refusals, and the guest keeps running through them.
        fault(sock, "kvm: PUT /boot-source after boot", "PUT", "/boot-source", {"kernel_image_path": kernel},
              want="not supported after starting")
        fault(sock, "kvm: InstanceStart twice", "PUT", "/actions", {"action_type": "InstanceStart"},
              want="not supported after starting")
        fault(sock, "kvm: PUT /machine-config after boot", "PUT", "/machine-config",
              {"vcpu_count": 1, "mem_size_mib": 128}, want="not supported after starting")
        fault(sock, "kvm: PUT /metrics after boot", "PUT", "/metrics", {"metrics_path": metrics},
              want="not supported after starting")
        fault(sock, "kvm: malformed JSON after boot", "PATCH", "/vm", raw_body=b"{", want="Malformed JSON")
        n4 = ticks(con)
        report(bool(wait_for(lambda: ticks(con) > n4 + 1, 60, 0.2)), "kvm: guest runs on after the refusals")

        # Ctrl-Alt-Del: Linux (C_A_D on) restarts through the keyboard controller; kiln exits 4.
        lines_before = len(open(metrics).read().splitlines())
        rc, _, err = ctl(sock, "ctrl-alt-del")
        report(rc == 0, "kvm: ctl ctrl-alt-del", f"{rc} {err}")
        try:
            code = p.wait(120)
        except subprocess.TimeoutExpired:
            code = None
        report(code == 4, "kvm: guest reset after Ctrl-Alt-Del: kiln exits 4", f"exit {code}")
        report(not os.path.exists(sock), "kvm: socket removed at exit")
        report(len(open(metrics).read().splitlines()) == lines_before + 1, "kvm: a last metrics line at exit")
    finally:
        if p.poll() is None:
            stop(p, signal.SIGKILL)
        conf.close()

    # --config-file boot (no API): the test kernel to its kiln.test=1 line.
    cfgf = os.path.join(TMP, "boot.json")
    json.dump({"boot-source": {"kernel_image_path": kernel, "initrd_path": initrd,
                               "boot_args": "console=ttyS0 reboot=k panic=-1 kiln.test=1"},
               "machine-config": {"vcpu_count": 2, "mem_size_mib": 256}}, open(cfgf, "w"))
    con2 = os.path.join(TMP, "console2.log")
    try:
        r = subprocess.run([KILN, "run", "--config-file", cfgf, "--no-api", "--console", "file:" + con2],
                           capture_output=True, text=True, timeout=boot_timeout)
        text = open(con2, "rb").read()
        report(r.returncode == 0 and b"kiln-guest: cpus=2" in text, "kvm: --config-file boots (cpus=2, exit 0)",
               f"{r.returncode} {r.stderr.strip()[:200]} {text[-200:]!r}")
    except subprocess.TimeoutExpired:
        report(False, "kvm: --config-file boots (cpus=2, exit 0)", "timeout")


def kvm_usable():
    return os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)


def main():
    if PARTS in ("all", "nokvm"):
        part_a()
        part_a_net()
    if PARTS in ("all", "kvm", "kvmnet"):
        if kvm_usable():
            if PARTS != "kvmnet":
                part_b()
            part_b_net()
        elif os.environ.get("KILN_REQUIRE_KVM") == "1":
            report(False, "KVM part", "/dev/kvm not available and KILN_REQUIRE_KVM=1")
        else:
            skip("KVM part", "/dev/kvm not available (run through tests/kvmlab/run.sh)")
    # An ASan/UBSan build reports on stderr: any report is a failure of its own.
    try:
        errlog = open(os.path.join(TMP, "kiln-stderr.log"), errors="replace").read()
        report(not re.search(r"Sanitizer|runtime error:", errlog), "no sanitizer reports on kiln's stderr",
               errlog[:300])
    except OSError:
        pass
    print(f"api: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    if failed:
        print(f"# logs kept in {TMP}")
    else:
        subprocess.run(["rm", "-rf", TMP])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
