#!/usr/bin/env python3
"""CPU seconds and peak RSS per process group while a command runs.

    bench/cpu.py -- ./target/release/loadgen --orders 5000 --no-check

Samples /proc every 100 ms; groups processes by name (the four services, postgres,
beam.smp for RabbitMQ, loadgen, kernel workers). Prints CPU-ms per finished saga when
the command is loadgen with --json.
"""
import json, os, subprocess, sys, time

import procstat

HZ = os.sysconf("SC_CLK_TCK")
GROUPS = ("order-service", "inventory-service", "payment-service",
          "notification-service", "postgres", "beam.smp", "loadgen", "kworker")


def sample():
    """pid -> (group, cpu ticks, rss kB) for the processes we care about."""
    out = {}
    for pid, g, fields in procstat.grouped(GROUPS):
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        rss_kb = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
        out[pid] = (g, ticks, rss_kb)
    return out


def main():
    cmd = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    first = sample()
    last = dict(first)
    peak = {}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    while proc.poll() is None:
        time.sleep(0.1)
        now = sample()
        last.update(now)
        per_group = {}
        for g, _, rss in now.values():
            per_group[g] = max(per_group.get(g, 0), rss)
        for g, rss in per_group.items():
            peak[g] = max(peak.get(g, 0), rss)
    stdout = proc.stdout.read()
    sys.stdout.write(stdout)
    cpu = {}
    for pid, (g, ticks, _) in last.items():
        before = first.get(pid, (g, 0, 0))[1]
        cpu[g] = cpu.get(g, 0) + (ticks - before) / HZ
    sagas = None
    try:
        report = json.loads(stdout)
        sagas = report["completed"] + report["cancelled"]
    except (ValueError, KeyError):
        pass
    print("\ngroup                  cpu_s   ms/saga  peak_rss_MB", file=sys.stderr)
    for g in GROUPS:
        if g in cpu:
            per = f"{cpu[g] * 1000 / sagas:8.2f}" if sagas else "       -"
            print(f"{g:20} {cpu[g]:7.2f}  {per}  {peak.get(g, 0) / 1024:10.1f}", file=sys.stderr)
    total = sum(cpu.values())
    per = f"{total * 1000 / sagas:8.2f}" if sagas else "       -"
    print(f"{'total':20} {total:7.2f}  {per}", file=sys.stderr)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
