#!/usr/bin/env python3
"""Turns bench/results/saturation.jsonl into docs/saturation.png and a Markdown table.

    python3 -m venv target/bench-venv && target/bench-venv/bin/pip install matplotlib
    target/bench-venv/bin/python bench/plot.py
"""
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

root = pathlib.Path(__file__).resolve().parent.parent
runs = [json.loads(line) for line in (root / "bench/results/saturation.jsonl").open() if line.strip()]
open_loop = [r for r in runs if r["offered_rate"]]
closed = [r for r in runs if not r["offered_rate"]]

print("| offered /s | POSTs /s | 503s | throughput sagas/s | saga p50 ms | p95 ms | p99 ms | max ms | POST p99 ms |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in runs:
    offered = f"{r['offered_rate']:.0f}" if r["offered_rate"] else f"closed loop ×{r['concurrency']}"
    s = r["saga_latency_ms"]
    print(f"| {offered} | {r['achieved_post_rate']:.0f} | {r['statuses'].get('503', 0)} | {r['throughput']:.0f} "
          f"| {s['p50']:.0f} | {s['p95']:.0f} | {s['p99']:.0f} | {s['max']:.0f} | {r['post_latency_ms']['p99']:.0f} |")

offered = [r["offered_rate"] for r in open_loop]
fig, left = plt.subplots(figsize=(8, 4.5), dpi=120)
left.plot(offered, [r["throughput"] for r in open_loop], "o-", color="tab:blue", label="throughput")
left.plot(offered, offered, ":", color="grey", label="offered = served")
for r in closed:
    left.axhline(r["throughput"], color="tab:blue", linestyle="--", linewidth=1,
                 label=f"closed-loop ceiling ({r['throughput']:.0f}/s)")
left.set_xlabel("offered load (orders/s)")
left.set_ylabel("sagas finished per second", color="tab:blue")
right = left.twinx()
right.plot(offered, [r["saga_latency_ms"]["p99"] for r in open_loop], "s-", color="tab:red", label="saga p99")
right.plot(offered, [r["saga_latency_ms"]["p50"] for r in open_loop], "^-", color="tab:orange", label="saga p50")
right.set_yscale("log")
right.set_ylabel("saga latency (ms, log)", color="tab:red")
handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
left.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize=8)
left.set_title("Order saga on one 2-core machine: throughput and latency against offered load")
fig.tight_layout()
fig.savefig(root / "docs/saturation.png")
print(f"\nwrote {root / 'docs/saturation.png'}")
