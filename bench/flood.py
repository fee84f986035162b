#!/usr/bin/env python3
"""Floods one replica before authentication, for bench/flood.sh.

Keeps IDLE TCP connections open to the edge port that never send a byte (each one re-dialled
as soon as the replica closes it), spread over source addresses 127.0.1.1 and up, and sends
a stream of certificate requests with bad join tokens to the certificate service (TLS, a new
connection each). Prints, once a second: idle connections open, re-dials, bad-token answers.
"""
import argparse
import selectors
import socket
import ssl
import threading
import time


def idle_pool(port, count, sources, stop, stats):
    sel = selectors.DefaultSelector()

    def dial(i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((sources[i % len(sources)], 0))
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        sel.register(s, selectors.EVENT_READ, i)

    for i in range(count):
        dial(i)
    while not stop.is_set():
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(1)
            except OSError:
                data = b""
            if data:
                continue
            sel.unregister(s)
            s.close()
            stats["redials"] += 1
            dial(key.data)
        stats["open"] = len(sel.get_map())


def bad_tokens(port, stop, stats):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    request = (b"GET /edge.crt HTTP/1.1\r\nHost: 127.0.0.1\r\nNodeName: flood-node\r\n"
               b"Authorization: Bearer a.b.c\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with ctx.wrap_socket(raw) as s:
                    s.sendall(request)
                    answer = s.recv(64)
                    if answer.startswith(b"HTTP/1.1 401"):
                        stats["refused_tokens"] += 1
                    else:
                        stats["other_answers"] += 1
        except OSError:
            stats["token_errors"] += 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--edge-port", type=int, required=True)
    p.add_argument("--cert-port", type=int, required=True)
    p.add_argument("--idle", type=int, default=2000)
    p.add_argument("--sources", type=int, default=16, help="127.0.1.1 … 127.0.1.<N>")
    p.add_argument("--token-threads", type=int, default=2)
    p.add_argument("--duration", type=float, default=600)
    a = p.parse_args()
    sources = ["127.0.1.%d" % (1 + i) for i in range(a.sources)]
    stop = threading.Event()
    stats = {"open": 0, "redials": 0, "refused_tokens": 0, "other_answers": 0, "token_errors": 0}
    threads = [threading.Thread(target=idle_pool, args=(a.edge_port, a.idle, sources, stop, stats))]
    threads += [threading.Thread(target=bad_tokens, args=(a.cert_port, stop, stats))
                for _ in range(a.token_threads)]
    for t in threads:
        t.daemon = True
        t.start()
    end = time.time() + a.duration
    try:
        while time.time() < end:
            time.sleep(1)
            print(" ".join("%s=%d" % kv for kv in sorted(stats.items())), flush=True)
    except KeyboardInterrupt:
        pass
    stop.set()


if __name__ == "__main__":
    main()
