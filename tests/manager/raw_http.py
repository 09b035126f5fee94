#!/usr/bin/env python3
"""Raw-socket HTTP cases for kiln serve's API that curl cannot make (tests/manager/run.sh).

usage: raw_http.py SOCKET CASE [ARG]; exit 0 when the manager behaved, else 1 with a reason.
  pipeline          three requests in one write: three answers, in order, on one connection
  garbage           not HTTP: a 400 with a fault message, then the connection closes
  halfclose ID      POST /vms/ID/stop, then shut down our sending side: the answer still comes
  vanish ID         POST /vms/ID/stop and close at once: the manager must not mind
  flood             64 connections held open, one more: that one is closed, the 64 still served
"""
import json
import socket
import sys
import time


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    return s


def read_answers(s, n):
    """Read n HTTP answers (Content-Length framed, or none for 204) -> [(status, body)]."""
    buf, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                return out
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(buf) < length:
            d = s.recv(65536)
            if not d:
                return out
            buf += d
        out.append((status, buf[:length]))
        buf = buf[length:]
    return out


def req(method, path, body=b"", close=False):
    h = "%s %s HTTP/1.1\r\nHost: kiln\r\nContent-Length: %d\r\n" % (method, path, len(body))
    if close:
        h += "Connection: close\r\n"
    return h.encode() + b"\r\n" + body


def fail(why):
    print("raw_http: " + why)
    sys.exit(1)


def main():
    path, case = sys.argv[1], sys.argv[2]
    if case == "pipeline":
        s = connect(path)
        s.sendall(req("GET", "/") + req("GET", "/vms") + req("GET", "/nope", close=True))
        a = read_answers(s, 3)
        if [x[0] for x in a] != [200, 200, 404]:
            fail("statuses %s" % [x[0] for x in a])
        if json.loads(a[0][1]).get("service") != "kiln-serve" or "vms" not in json.loads(a[1][1]):
            fail("bodies out of order")
        if s.recv(1) != b"":
            fail("not closed after Connection: close")
    elif case == "garbage":
        s = connect(path)
        s.sendall(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
        a = read_answers(s, 1)
        if not a or a[0][0] != 400 or "fault_message" not in json.loads(a[0][1]):
            fail("answer %s" % a)
        if s.recv(1) != b"":
            fail("not closed after a malformed request")
    elif case == "halfclose":
        s = connect(path)
        s.sendall(req("POST", "/vms/%s/stop" % sys.argv[3]))
        s.shutdown(socket.SHUT_WR)
        a = read_answers(s, 1)
        if not a or a[0][0] != 200 or json.loads(a[0][1]).get("state") != "exited":
            fail("answer %s" % a)
    elif case == "vanish":
        s = connect(path)
        s.sendall(req("POST", "/vms/%s/stop" % sys.argv[3]))
        time.sleep(0.05)
        s.close()
    elif case == "flood":
        held = [connect(path) for _ in range(64)]
        time.sleep(0.3)
        extra = connect(path)
        try:
            extra.sendall(req("GET", "/"))
            if extra.recv(1) != b"":
                fail("connection 65 was served")
        except OSError:
            pass     # reset: refused, as wanted
        for s in held:
            s.sendall(req("GET", "/"))
        for s in held:
            a = read_answers(s, 1)
            if not a or a[0][0] != 200:
                fail("a held connection got %s" % a)
            s.close()
    else:
        fail("unknown case " + case)


main()
