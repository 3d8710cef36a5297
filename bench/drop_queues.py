#!/usr/bin/env python3
"""Deletes the queues and exchanges a benchmark run declared (names starting with PREFIX),
so idle queues of earlier runs do not pile up in RabbitMQ between runs.

    target/bench-venv/bin/python bench/drop_queues.py PREFIX   (needs `pip install pika`)

The queue names come from `rabbitmqctl list_queues` once; deleting goes over AMQP.
"""
import subprocess
import sys

import pika

prefix = sys.argv[1]
names = subprocess.run(["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name"],
                       capture_output=True, text=True, check=True).stdout.split()
channel = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1")).channel()
mine = [name for name in names if name.startswith(prefix)]
for name in mine:
    channel.queue_delete(name)
channel.exchange_delete(prefix)
print(f"drop_queues: deleted {len(mine)} queues of {prefix}", file=sys.stderr)
