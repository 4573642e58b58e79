#!/usr/bin/env python3
"""A plaintext peer that puts hostile text on the wire, for the hostile-text process test.

hostile_peer.py SCHEMA listen            listens on 127.0.0.1:0, prints "port N"; answers every
                                         Hello with Reject{busy, HOSTILE}
hostile_peer.py SCHEMA session HOST:PORT GO
                                         Hello with a bidi name, waits for HelloAck, prints
                                         "established", waits until the file GO exists, sends
                                         Goodbye{HOSTILE}, reads to the end, prints "done"
hostile_peer.py SCHEMA error HOST:PORT   sends Error{0, protocol, HOSTILE} as its first frame
hostile_peer.py SCHEMA badhello HOST:PORT
                                         Hellos whose names break the rules (invalid UTF-8,
                                         300 bytes, ESC)
hostile_peer.py SCHEMA show              prints the hostile texts as JSON (for the checker)

Frames are made with `capnp encode` from Cap'n Proto text; every byte of the hostile texts is
written as an \\x escape there, so nothing here depends on how a shell passes bytes.
"""
import json
import os
import socket
import subprocess
import sys
import time

# ESC, an OSC title change ended by BEL, CR, a screen clear, DEL, a C1 CSI, bidi overrides and
# isolates, the line separator.
HOSTILE = ("x\x1b]0;pwned\x07\r\x1b[2J\x1b[31mred\x7f\u009b31m"
           "\u202eevil\u202c\u2066iso\u2069\u2028end")
BIDI_NAME = "evil\u202etxt.exe"


def capnp_text(value):
    """A Cap'n Proto text literal holding exactly `value` (as UTF-8)."""
    return '"' + "".join(f"\\x{b:02x}" for b in value.encode("utf-8")) + '"'


def capnp_bytes_text(raw):
    return '"' + "".join(f"\\x{b:02x}" for b in raw) + '"'


def encode(schema, text):
    return subprocess.run(["capnp", "encode", schema, "Frame"], input=text.encode(),
                          capture_output=True, check=True).stdout


def decode(schema, frame):
    return subprocess.run(["capnp", "decode", schema, "Frame"], input=frame,
                          capture_output=True, check=True).stdout.decode()


def hello(schema, name_literal):
    peer_id = capnp_bytes_text(os.urandom(32))
    digest = capnp_bytes_text(bytes(32))
    return encode(schema, "(hello = (versionMin = 1, versionMax = 1, peerId = " + peer_id +
                  ", name = " + name_literal + ", library = (epoch = 1, rev = 1, digest = " +
                  digest + "), limits = (maxFrameBytes = 16777216, maxInFlight = 64, "
                  "maxChunkBytes = 4194304), instanceId = 77))")


def read_exactly(sock, n):
    data = b""
    while len(data) < n:
        more = sock.recv(n - len(data))
        if not more:
            return None
        data += more
    return data


def read_frame(sock):
    head = read_exactly(sock, 4)
    if head is None:
        return None
    count = int.from_bytes(head, "little") + 1
    table = read_exactly(sock, 4 * count + (4 if count % 2 == 0 else 0))
    words = sum(int.from_bytes(table[4 * i:4 * i + 4], "little") for i in range(count))
    return head + table + read_exactly(sock, 8 * words)


def drain(sock):
    while read_frame(sock) is not None:
        pass


def connect(address):
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=30)


def main():
    schema, command = sys.argv[1], sys.argv[2]
    if command == "show":
        print(json.dumps({"hostile": HOSTILE, "bidiName": BIDI_NAME}))
    elif command == "listen":
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        print(f"port {server.getsockname()[1]}", flush=True)
        reject = encode(schema, "(reject = (code = busy, message = " + capnp_text(HOSTILE) + "))")
        while True:
            conn, _ = server.accept()
            with conn:
                if read_frame(conn) is not None:  # its Hello
                    conn.sendall(reject)
    elif command == "session":
        sock = connect(sys.argv[3])
        sock.sendall(hello(schema, capnp_text(BIDI_NAME)))
        answer = decode(schema, read_frame(sock))
        if "helloAck" not in answer[:20]:
            sys.exit(f"no HelloAck: {answer[:200]}")
        print("established", flush=True)
        go = sys.argv[4]
        deadline = time.monotonic() + 60
        while not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.05)  # a bounded poll for the test's go-ahead
        sock.sendall(encode(schema, "(goodbye = (reason = shutdown, message = " +
                            capnp_text(HOSTILE) + ", lastRequestId = 0))"))
        drain(sock)
        print("done", flush=True)
    elif command == "error":
        sock = connect(sys.argv[3])
        sock.sendall(encode(schema, "(error = (id = 0, code = protocol, message = " +
                            capnp_text(HOSTILE) + "))"))
        drain(sock)
    elif command == "badhello":
        for name in [capnp_bytes_text(b"bad\xff\xfeutf8"), capnp_text("n" * 300),
                     capnp_text("esc\x1b[2J")]:
            sock = connect(sys.argv[3])
            sock.sendall(hello(schema, name))
            drain(sock)


if __name__ == "__main__":
    main()
