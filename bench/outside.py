#!/usr/bin/env python3
"""The outside driver: measures a running stack through its HTTP API only, the same way
for every build, so two builds can be compared without trusting either one's own tools.

    bench/outside.py closed [--connections 64] [--seconds 10]
    bench/outside.py paced  [--rate 100] [--orders 2000]

closed  wrk holds --connections POSTs in flight for --seconds (a 503 is answered and the
        connection posts again at once, as any client that ignores Retry-After would), then
        the driver waits until no order is PENDING. Throughput = orders that ended / (time
        from the first POST until the last one ended).
paced   one POST every 1/--rate s, open loop (a slow answer does not delay the next POST),
        then the same drain. Saga latency = the order's `updated_at` (set by the
        transaction that made it COMPLETED or CANCELLED) minus the moment its POST started,
        both read on this machine's clock.

Both steps top up product-A first, then order one unit of it per order, and read every
order back through `GET /api/orders` once the system is quiet. CPU is read from /proc for
the four services, PostgreSQL and RabbitMQ (not this driver, not wrk) from the first POST
until the last order ended. Prints one JSON object. Stdlib only (plus wrk for `closed`).

Environment: ORDER_URL (http://127.0.0.1:8000), INVENTORY_URL (http://127.0.0.1:8001),
ADMIN_TOKEN (sent with the restock; older builds ignore it).
"""
import argparse, asyncio, datetime, json, os, re, subprocess, sys, tempfile, time
import urllib.request

import procstat

ORDER_URL = os.environ.get("ORDER_URL", "http://127.0.0.1:8000")
INVENTORY_URL = os.environ.get("INVENTORY_URL", "http://127.0.0.1:8001")
BODY = json.dumps({"customer_id": "customer-bench",
                   "items": [{"product_id": "product-A", "quantity": 1}],
                   "total_amount": 10.00}).encode()
GROUPS = ("order-service", "inventory-service", "payment-service", "notification-service",
          "postgres", "beam.smp")
HZ = os.sysconf("SC_CLK_TCK")
# The stack's own binaries (bench/scenario.sh says where they are): a service of another
# stack on the box (a dev stack, a test) is not counted.
BIN_DIR = os.path.realpath(os.environ["SCENARIO_BIN_DIR"]) if os.environ.get("SCENARIO_BIN_DIR") else None


def ours(pid, group):
    if BIN_DIR is None or group in ("postgres", "beam.smp"):
        return True
    try:
        return os.path.realpath(os.readlink(f"/proc/{pid}/exe")).startswith(BIN_DIR + "/")
    except OSError:
        return False


def http(method, url, body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def restock():
    token = os.environ.get("ADMIN_TOKEN", "")
    http("PUT", f"{INVENTORY_URL}/api/inventory/product-A",
         json.dumps({"available": 1_000_000_000}).encode(),
         {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})


class Cpu:
    """CPU ticks of the system's processes, sampled once a second so that processes that
    exit mid-run (PostgreSQL backends) still count."""

    def __init__(self):
        self.first = self.sample()
        self.last = dict(self.first)

    @staticmethod
    def sample():
        out = {}
        for pid, group, fields in procstat.grouped(GROUPS):
            if ours(pid, group):
                out[pid] = (group, int(fields[11]) + int(fields[12]))
        return out

    def tick(self):
        self.last.update(self.sample())

    def seconds(self):
        self.tick()
        per = {}
        for pid, (group, ticks) in self.last.items():
            per[group] = per.get(group, 0) + (ticks - self.first.get(pid, (group, 0))[1]) / HZ
        return per


async def drain(cpu, deadline_s=300):
    """Waits until no order is PENDING; returns the moment it saw that."""
    loop = asyncio.get_running_loop()
    started = time.time()
    last_tick = started
    while time.time() - started < deadline_s:
        pending = await loop.run_in_executor(
            None, http, "GET", f"{ORDER_URL}/api/orders?status=PENDING&limit=1")
        if not pending:
            return time.time()
        if time.time() - last_tick >= 1:
            cpu.tick()
            last_tick = time.time()
        await asyncio.sleep(0.05)
    raise SystemExit("outside: orders still PENDING after 300 s")


def all_orders():
    orders, offset = [], 0
    while True:
        page = http("GET", f"{ORDER_URL}/api/orders?limit=500&offset={offset}")
        orders += page
        if len(page) < 500:
            return orders
        offset += 500


def stamp(text):
    return datetime.datetime.fromisoformat(text).replace(
        tzinfo=datetime.timezone.utc).timestamp()


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p / 100))], 1)


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs an order and reads the answer."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host, port):
        return cls(*await asyncio.open_connection(host, port))

    async def post(self, host):
        self.writer.write(
            b"POST /api/orders HTTP/1.1\r\nHost: " + host.encode() +
            b"\r\nContent-Type: application/json\r\nContent-Length: " +
            str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length)
        return status, body


async def paced(rate, count):
    host_port = ORDER_URL.split("//", 1)[1].rstrip("/")
    host, port = host_port.split(":")
    idle = []
    started_at = {}  # order id -> wall-clock time its POST started
    post_ms, statuses = [], {}
    cpu = Cpu()
    t0 = time.time()

    async def one():
        connection = idle.pop() if idle else await Connection.open(host, int(port))
        start = time.time()
        status, body = await connection.post(host_port)
        post_ms.append((time.time() - start) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        if status == 201:
            started_at[json.loads(body)["id"]] = start
        idle.append(connection)

    tasks = []
    for i in range(count):
        delay = t0 + i / rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
        if i % rate == 0:
            cpu.tick()
    await asyncio.gather(*tasks)
    ended = await drain(cpu)
    seconds = cpu.seconds()
    orders = [o for o in all_orders() if o["id"] in started_at]
    latency = [(stamp(o["updated_at"]) - started_at[o["id"]]) * 1000 for o in orders]
    return report("paced", orders, ended - t0, seconds, statuses, latency, post_ms)


async def closed(connections, seconds):
    cpu = Cpu()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(BODY.decode())}\n'
                     'wrk.headers["Content-Type"] = "application/json"\n')
    t0 = time.time()
    wrk = await asyncio.create_subprocess_exec(
        "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name,
        f"{ORDER_URL}/api/orders", stdout=asyncio.subprocess.PIPE)
    while wrk.returncode is None:
        try:
            await asyncio.wait_for(wrk.wait(), 1)
        except asyncio.TimeoutError:
            cpu.tick()
    out = (await wrk.stdout.read()).decode()
    os.unlink(script.name)
    ended = await drain(cpu)
    used = cpu.seconds()
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])
    orders = all_orders()
    latency = [(stamp(o["updated_at"]) - stamp(o["created_at"])) * 1000 for o in orders]
    statuses = {"2xx": requests - non2xx, "other": non2xx}
    return report("closed", orders, ended - t0, used, statuses, latency, None)


def report(step, orders, elapsed, cpu, statuses, latency, post_ms):
    ended = [o for o in orders if o["status"] != "PENDING"]
    total_cpu = sum(cpu.values())
    return {
        "step": step,
        "orders": len(orders),
        "completed": sum(o["status"] == "COMPLETED" for o in orders),
        "cancelled": sum(o["status"] == "CANCELLED" for o in orders),
        "posts": statuses,
        "seconds": round(elapsed, 2),
        "throughput": round(len(ended) / elapsed, 1),
        "saga_p50_ms": percentile(latency, 50),
        "saga_p99_ms": percentile(latency, 99),
        "post_p50_ms": percentile(post_ms, 50) if post_ms else None,
        "post_p99_ms": percentile(post_ms, 99) if post_ms else None,
        "cpu_ms_per_saga": round(total_cpu * 1000 / max(1, len(ended)), 2),
        "cpu_s": {g: round(s, 2) for g, s in sorted(cpu.items())},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("closed", "paced"))
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--orders", type=int, default=2000)
    args = parser.parse_args()
    restock()
    if args.step == "closed":
        result = asyncio.run(closed(args.connections, args.seconds))
    else:
        result = asyncio.run(paced(args.rate, args.orders))
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
