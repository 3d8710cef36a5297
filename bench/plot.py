#!/usr/bin/env python3
"""Turns bench/results/saturation.jsonl into docs/saturation.png and a Markdown table.

The upper panel shows throughput and saga latency against offered load, the lower one the
load shed: 503 answers per second (loadgen's `shed_per_s`).

    python3 -m venv target/bench-venv && target/bench-venv/bin/pip install matplotlib
    target/bench-venv/bin/python bench/plot.py [results.jsonl [plot.png]]

(default: bench/results/saturation.jsonl and docs/saturation.png)
"""
import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

root = pathlib.Path(__file__).resolve().parent.parent
results = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "bench/results/saturation.jsonl"
png = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else root / "docs/saturation.png"
runs = [json.loads(line) for line in results.open() if line.strip()]
open_loop = [r for r in runs if r["offered_rate"]]
closed = [r for r in runs if not r["offered_rate"]]


def shed_per_s(r):
    """503s per second of posting; worked out from the statuses for reports older than `shed_per_s`."""
    if "shed_per_s" in r:
        return r["shed_per_s"]
    posting = r["orders"] / r["achieved_post_rate"] if r["achieved_post_rate"] else 0
    return r["statuses"].get("503", 0) / posting if posting else 0.0


print("| offered /s | POSTs /s | 503s | shed /s | throughput sagas/s | saga p50 ms | p95 ms | p99 ms | max ms | POST p99 ms | 503 p99 ms |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in runs:
    offered = f"{r['offered_rate']:.0f}" if r["offered_rate"] else f"closed loop ×{r['concurrency']}"
    s = r["saga_latency_ms"]
    shed_p99 = f"{r['shed_latency_ms']['p99']:.0f}" if r.get("shed") else "–"
    print(f"| {offered} | {r['achieved_post_rate']:.0f} | {r['statuses'].get('503', 0)} | {shed_per_s(r):.0f} "
          f"| {r['throughput']:.0f} "
          f"| {s['p50']:.0f} | {s['p95']:.0f} | {s['p99']:.0f} | {s['max']:.0f} | {r['post_latency_ms']['p99']:.0f} | {shed_p99} |")

offered = [r["offered_rate"] for r in open_loop]
fig, (left, shed) = plt.subplots(2, 1, sharex=True, figsize=(8, 6.5), dpi=120,
                                 gridspec_kw={"height_ratios": [3, 1.3]})
left.plot(offered, [r["throughput"] for r in open_loop], "o-", color="tab:blue", label="throughput")
left.plot(offered, offered, ":", color="grey", label="offered = served")
for r in closed:
    left.axhline(r["throughput"], color="tab:blue", linestyle="--", linewidth=1,
                 label=f"closed-loop ceiling ({r['throughput']:.0f}/s)")
left.set_ylabel("sagas finished per second", color="tab:blue")
right = left.twinx()
right.plot(offered, [r["saga_latency_ms"]["p99"] for r in open_loop], "s-", color="tab:red", label="saga p99")
right.plot(offered, [r["saga_latency_ms"]["p50"] for r in open_loop], "^-", color="tab:orange", label="saga p50")
right.set_yscale("log")
right.set_ylabel("saga latency (ms, log)", color="tab:red")
handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
left.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize=8)
left.set_title("Order saga on one 2-core machine: throughput, latency and load shed")
shed.plot(offered, [shed_per_s(r) for r in open_loop], "D-", color="tab:purple", label="shed (503s/s)")
shed.set_xlabel("offered load (orders/s)")
shed.set_ylabel("503s per second", color="tab:purple")
shed.set_ylim(bottom=0)
shed.legend(loc="upper left", fontsize=8)
fig.tight_layout()
fig.savefig(png)
print(f"\nwrote {png}")
