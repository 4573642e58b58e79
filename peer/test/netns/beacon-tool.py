#!/usr/bin/env python3
"""Hostile and honest beacon traffic for peer/test/netns/beacon-inputs.sh, from inside a namespace.

  beacon-tool.py send IFACE_ADDR FILE...        each FILE as one datagram to 239.255.77.47:4747
  beacon-tool.py flood IFACE_ADDR TEMPLATE N    N announces from TEMPLATE (the Cap'n Proto bytes
                                                of an Announce), each with a fresh random peer id
  beacon-tool.py listen IFACE_ADDR SOURCE SECS  counts datagrams from SOURCE to the group, prints
                                                "heard N" when SECS have passed

The flood rewrites the 32 bytes of the template's peer id, found by its marker value.
"""
import os
import socket
import struct
import sys
import time

GROUP, PORT = "239.255.77.47", 4747
MARKER = bytes([0xA5]) * 32  # the template's peer id


def sender(iface_addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface_addr))
    return s


def send(iface_addr, files):
    s = sender(iface_addr)
    for name in files:
        with open(name, "rb") as f:
            s.sendto(f.read(), (GROUP, PORT))


def flood(iface_addr, template, count):
    with open(template, "rb") as f:
        data = f.read()
    at = data.index(MARKER)
    s = sender(iface_addr)
    for _ in range(count):
        s.sendto(data[:at] + os.urandom(32) + data[at + 32:], (GROUP, PORT))


def listen(iface_addr, source, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((GROUP, PORT))
    request = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(iface_addr))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, request)
    print("listening", flush=True)
    heard, end = 0, time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            _, (host, _) = s.recvfrom(2048)
        except socket.timeout:
            break
        if host == source:
            heard += 1
    print("heard %d" % heard, flush=True)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "send":
        send(args[0], args[1:])
    elif command == "flood":
        flood(args[0], args[1], int(args[2]))
    elif command == "listen":
        listen(args[0], args[1], float(args[2]))
    else:
        sys.exit("unknown command " + command)
