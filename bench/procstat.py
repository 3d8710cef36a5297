"""The processes /proc shows, by group: what cpu.py and outside.py sample."""
import os


def grouped(groups):
    """(pid, group, its stat fields after the command name) of each process whose name
    starts with one of `groups` (the kernel keeps the first 15 characters of a name)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        group = next((g for g in groups if comm.startswith(g[:15])), None)
        if group is not None:
            yield pid, group, stat[stat.rindex(")") + 2:].split()
