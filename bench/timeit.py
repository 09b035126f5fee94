#!/usr/bin/env python3
"""Wall-clock timing helpers for kiln's bench scripts (no pass/fail).

  timeit.py runs N [--warmup W] [--until REGEX] [--timeout S] [--name NAME]
                 [--save FILE] -- CMD...
      Run CMD N times (after W unmeasured runs); print min/median/mean in ms
      and the exit codes seen (--save: "MIN MEDIAN" in ms into FILE). With --until, a run ends when a line of CMD's
      output matches REGEX: the time is taken then and CMD is killed (for a
      VMM that has no way to exit on the guest's power-off).

  timeit.py trace [--mark REGEX]... [--timeout S] [--log FILE] -- CMD...
      Run CMD once, its stdout and stderr merged into FILE (or discarded), and
      print the time from start at which each REGEX first matched a line,
      then the total wall time and the exit code.

  timeit.py hfjson FILE
      Summarise a hyperfine --export-json file in the same format as "runs".
"""
import os
import re
import signal
import statistics
import subprocess
import sys
import time


def split_cmd(args):
    if "--" not in args:
        sys.exit("timeit.py: missing -- before the command")
    i = args.index("--")
    return args[:i], args[i + 1:]


def opt(opts, name, default=None, conv=str, multi=False):
    vals = []
    j = 0
    while j < len(opts):
        if opts[j] == name and j + 1 < len(opts):
            vals.append(conv(opts[j + 1]))
            j += 2
        else:
            j += 1
    if multi:
        return vals
    return vals[-1] if vals else default


def kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def one_run(cmd, until, timeout):
    """Wall ns of one run and its exit code ('until' for a matched line)."""
    t0 = time.monotonic_ns()
    if until is None:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            code = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(p)
            return time.monotonic_ns() - t0, "timeout"
        return time.monotonic_ns() - t0, code
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    pat = re.compile(until)
    signal.signal(signal.SIGALRM, lambda *_: kill_group(p))
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        for raw in p.stdout:
            if pat.search(raw.decode(errors="replace")):
                t = time.monotonic_ns() - t0
                kill_group(p)
                return t, "until"
            if time.monotonic() > deadline:
                break
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    kill_group(p)
    return time.monotonic_ns() - t0, "no-match"


def cmd_runs(args):
    opts, cmd = split_cmd(args)
    n = int(opts[0])
    warm = opt(opts, "--warmup", 2, int)
    until = opt(opts, "--until")
    timeout = opt(opts, "--timeout", 60.0, float)
    name = opt(opts, "--name", os.path.basename(cmd[0]))
    save = opt(opts, "--save")
    for _ in range(warm):
        one_run(cmd, until, timeout)
    times, codes = [], {}
    for _ in range(n):
        t, c = one_run(cmd, until, timeout)
        times.append(t / 1e6)
        codes[str(c)] = codes.get(str(c), 0) + 1
    cs = ", ".join(f"{k} in {v} runs" for k, v in sorted(codes.items()))
    if save:
        with open(save, "w") as f:
            f.write(f"{min(times):.4f} {statistics.median(times):.4f}\n")
    print(f"{name}: n={n} min={min(times):.2f} ms median={statistics.median(times):.2f} ms "
          f"mean={statistics.mean(times):.2f} ms (exit {cs})")
    return 0


def cmd_trace(args):
    opts, cmd = split_cmd(args)
    marks = [(m, re.compile(m)) for m in opt(opts, "--mark", multi=True)]
    timeout = opt(opts, "--timeout", 600.0, float)
    logpath = opt(opts, "--log", os.devnull)
    seen = {}
    t0 = time.monotonic_ns()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    timed_out = []

    def on_alarm(*_):
        timed_out.append(1)
        kill_group(p)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    with open(logpath, "wb") as log:
        for raw in p.stdout:
            log.write(raw)
            line = raw.decode(errors="replace")
            for m, pat in marks:
                if m not in seen and pat.search(line):
                    seen[m] = (time.monotonic_ns() - t0) / 1e9
    code = p.wait()
    signal.setitimer(signal.ITIMER_REAL, 0)
    total = (time.monotonic_ns() - t0) / 1e9
    for m, _ in marks:
        v = f"{seen[m]:.2f} s" if m in seen else "not seen"
        print(f"  at '{m}': {v}")
    print(f"  total: {total:.2f} s, exit code {'timeout' if timed_out else code}")
    return 0


def cmd_hfjson(args):
    import json
    with open(args[0]) as f:
        r = json.load(f)["results"][0]
    t = [x * 1e3 for x in r["times"]]
    codes = {}
    for c in r.get("exit_codes", []):
        codes[str(c)] = codes.get(str(c), 0) + 1
    cs = ", ".join(f"{k} in {v} runs" for k, v in sorted(codes.items()))
    print(f"{r['command']}: n={len(t)} min={min(t):.2f} ms median={statistics.median(t):.2f} ms "
          f"mean={statistics.mean(t):.2f} ms (exit {cs}; hyperfine)")
    return 0


def main(argv):
    cmds = {"runs": cmd_runs, "trace": cmd_trace, "hfjson": cmd_hfjson}
    if len(argv) < 2 or argv[1] not in cmds:
        sys.stderr.write(__doc__)
        return 2
    return cmds[argv[1]](argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
