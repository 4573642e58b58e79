#!/usr/bin/env python3
"""A connection flood for the admission tests and benchmarks (loopback only).

flood.py HOST:PORT --sources 127.0.0.1[,127.0.0.2-17] --idle N --slowloris N

Opens N idle TCP connections (they send nothing) and N slowloris connections (a TLS record
header and the start of a ClientHello, then one more byte every second, never completing it),
spread over the source addresses, prints "ready <open>" once all are open, and holds them until
it is killed. Connections the server closes are not reopened.
"""
import argparse
import select
import socket
import time

# A TLS 1.3 ClientHello record header announcing 512 bytes, and the handshake header.
PARTIAL_HELLO = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])


def sources(spec):
    out = []
    for part in spec.split(","):
        if "-" in part:
            base, last = part.rsplit("-", 1)
            prefix, first = base.rsplit(".", 1)
            out += [f"{prefix}.{i}" for i in range(int(first), int(last) + 1)]
        else:
            out.append(part)
    return out


def open_all(host, port, addresses, idle, slowloris, deadline):
    """Non-blocking connects, all at once, then wait for each to complete."""
    pending = {}
    poller = select.poll()
    for i in range(idle + slowloris):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((addresses[i % len(addresses)], 0))
        s.connect_ex((host, port))
        pending[s.fileno()] = (s, i >= idle)
        poller.register(s, select.POLLOUT)
    open_ = []
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(500):
            s, slow = pending.pop(fd)
            poller.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                s.close()
                continue
            open_.append((s, slow))
            if slow:
                try:
                    s.send(PARTIAL_HELLO)
                except OSError:
                    pass
    return open_


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--sources", default="127.0.0.1")
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--slowloris", type=int, default=1000)
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    conns = open_all(host, int(port), sources(args.sources), args.idle, args.slowloris,
                     time.monotonic() + 60)
    print(f"ready {len(conns)}", flush=True)
    slow = [s for s, is_slow in conns if is_slow]
    while True:  # until killed
        time.sleep(1.0)  # the slowloris pace: one byte per connection per second
        for s in slow:
            try:
                s.send(b"\x00")  # one more byte of a ClientHello that never ends
            except OSError:
                pass


if __name__ == "__main__":
    main()
