#!/usr/bin/env python3
"""What a link really does, measured from its two ends (peer/test/netns/lossy-link.sh).

  measure.py rtt-server PORT             accept and close TCP connections until killed
  measure.py rtt HOST PORT COUNT         COUNT TCP handshakes: prints "rtt min=.. median=.. ms"
  measure.py udp-sink PORT               counts datagrams until an end marker: "received N"
  measure.py udp-send HOST PORT COUNT    COUNT datagrams, then end markers

A TCP connect() returns after SYN and SYN-ACK: one round trip through the link.
"""
import socket
import statistics
import sys
import time


def rtt_server(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(128)
    while True:
        c, _ = s.accept()
        c.close()


def rtt(host, port, count):
    samples = []
    for _ in range(count):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(10)
        t = time.perf_counter()
        c.connect((host, port))
        samples.append((time.perf_counter() - t) * 1000)
        c.close()
    print("rtt min=%.1f median=%.1f ms" % (min(samples), statistics.median(samples)))


def udp_sink(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Room for the whole burst: the socket's own overflow is not the link's loss (root: FORCE).
    s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 32 << 20)
    s.bind(("0.0.0.0", port))
    s.settimeout(30)
    print("listening", flush=True)
    received = 0
    while True:
        data, _ = s.recvfrom(2048)
        if data == b"end":
            break
        received += 1
    print("received %d" % received, flush=True)


def udp_send(host, port, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(count):
        s.sendto(b"d" * 100, (host, port))
    for _ in range(50):  # the end marker crosses the same lossy link
        s.sendto(b"end", (host, port))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "rtt-server":
        rtt_server(int(args[0]))
    elif command == "rtt":
        rtt(args[0], int(args[1]), int(args[2]))
    elif command == "udp-sink":
        udp_sink(int(args[0]))
    elif command == "udp-send":
        udp_send(args[0], int(args[1]), int(args[2]))
    else:
        sys.exit("unknown command " + command)
