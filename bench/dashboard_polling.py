#!/usr/bin/env python3
"""What conditional GETs save on the dashboard's polling (CONTRACT §14).

    bench/dashboard_polling.py [--seconds 60] [--base http://localhost:8000] [--token JWT]

Against a running system (e.g. `cargo run --release -p devstack`), replays one open
dashboard's poll pattern — every second `GET /api/dashboard` and, for the selected order,
`GET /api/orders/{id}/events` and `/saga` — for `--seconds`, once sending no validator
(as the page did before) and once with `If-None-Match` (as it does now). Prints, per
minute, the bytes received (status line, headers and body) and the CPU time of
order-service and inventory-service (the dashboard reads the stock from inventory),
from /proc. Places one order first so there is something to show and select; nothing
else should be running against the system.
"""
import argparse, http.client, json, os, time, urllib.parse

HZ = os.sysconf("SC_CLK_TCK")
SERVERS = ("order-service", "inventory-service")


def stat(pid):
    """(comm, parent pid, utime+stime) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return text[text.index("(") + 1:text.rindex(")")], int(fields[1]), int(fields[11]) + int(fields[12])


def cpu_ticks():
    """Summed utime+stime of devstack's order-service and inventory-service (other
    processes of the same name, e.g. test stacks, are left out)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        found = stat(pid)
        if not found or not any(found[0].startswith(name[:15]) for name in SERVERS):
            continue
        parent = stat(found[1])
        if parent and parent[0] == "devstack":
            total += found[2]
    return total


def request(conn, method, path, headers, body=None):
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    head = len(f"HTTP/1.1 {response.status} {response.reason}\r\n") + sum(
        len(k) + len(v) + 4 for k, v in response.getheaders()) + 2
    return response.status, dict((k.lower(), v) for k, v in response.getheaders()), data, head + len(data)


def run(base, seconds, token, conditional, order_id):
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=10)
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    paths = ["/api/dashboard", f"/api/orders/{order_id}/events", f"/api/orders/{order_id}/saga"]
    tags, received, answers = {}, 0, {}
    start_cpu, start = cpu_ticks(), time.monotonic()
    for tick in range(seconds):
        for path in paths:
            headers = dict(auth)
            if conditional and path in tags:
                headers["If-None-Match"] = tags[path]
            status, response_headers, _, size = request(conn, "GET", path, headers)
            received += size
            answers[status] = answers.get(status, 0) + 1
            if "etag" in response_headers:
                tags[path] = response_headers["etag"]
        time.sleep(max(0.0, start + tick + 1 - time.monotonic()))
    elapsed = time.monotonic() - start
    cpu = (cpu_ticks() - start_cpu) / HZ
    per_minute = 60 / elapsed
    return {
        "requests": sum(answers.values()),
        "answers": answers,
        "kib_per_minute": round(received * per_minute / 1024, 1),
        "server_cpu_ms_per_minute": round(cpu * 1000 * per_minute),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--base", default="http://localhost:8000")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--token", default=os.environ.get("ADMIN_JWT"), help="a bearer JWT when authentication is on")
    args = parser.parse_args()
    url = urllib.parse.urlparse(args.base)
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=10)
    headers = {"Content-Type": "application/json"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    body = json.dumps({"customer_id": "customer-123", "items": [{"product_id": "product-A", "quantity": 1}], "total_amount": 25.0})
    status, _, data, _ = request(conn, "POST", "/api/orders", headers, body)
    assert status == 201, (status, data)
    order_id = json.loads(data)["id"]
    time.sleep(3)  # let its saga end, as a dashboard left open would see it
    results = {}
    for name, conditional in (("without If-None-Match", False), ("with If-None-Match", True)):
        results[name] = run(args.base, args.seconds, args.token, conditional, order_id)
        print(json.dumps({"mode": name, **results[name]}))
    before, after = results["without If-None-Match"], results["with If-None-Match"]
    print(json.dumps({
        "bytes_saved_percent": round(100 * (1 - after["kib_per_minute"] / before["kib_per_minute"]), 1),
        "cpu_saved_percent": round(100 * (1 - after["server_cpu_ms_per_minute"] / max(1, before["server_cpu_ms_per_minute"])), 1),
    }))


if __name__ == "__main__":
    main()
