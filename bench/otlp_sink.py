#!/usr/bin/env python3
"""A stand-in OTLP/HTTP collector for benchmarks: answers 200 to every POST /v1/traces and
counts requests and bytes, printed on SIGTERM or SIGINT. Decoding is left to a real
collector; the services' cost of tracing is what is measured.

    bench/otlp_sink.py 4318
"""
import http.server, signal, sys, threading

requests = 0
received = 0
lock = threading.Lock()


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global requests, received
        length = int(self.headers.get("content-length", 0))
        self.rfile.read(length)
        with lock:
            requests += 1
            received += length
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def report(*_):
    print(f"otlp_sink: {requests} exports, {received / 1e6:.1f} MB", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, report)
    signal.signal(signal.SIGINT, report)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4318
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()
