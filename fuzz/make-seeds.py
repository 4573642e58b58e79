#!/usr/bin/env python3
"""Writes the seed corpora of the codec-level fuzz targets from the golden vectors
(codec/test/vectors/*.bin). Re-run after the vectors change: fuzz/make-seeds.py"""
import os, struct, pathlib

root = pathlib.Path(__file__).resolve().parent
vectors = sorted((root.parent / "codec/test/vectors").glob("*.bin"))

def write(target, name, data):
    d = root / "corpus" / target / "seeds"
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)

frames = {v.stem: v.read_bytes() for v in vectors}
for stem, frame in frames.items():
    write("frame", stem, b"\x00\x01" + frame)          # bulk pieces
    write("frame", stem + "-dribble", b"\x01\x00" + frame)
    write("message", stem, frame[8:])                  # the segment alone
# Streams: every kind back to back, one truncated, and the segment-count wrap.
stream = b"".join(frames.values())
write("frame", "all-kinds", b"\x07\x07" + stream)
write("frame", "all-kinds-truncated", b"\x03\x09" + stream[:-5])
write("frame", "first-word-all-ones", b"\x00\x00" + b"\xff\xff\xff\xff" + b"\x00" * 60)
write("frame", "oversize-header", b"\x00\x00" + struct.pack("<II", 0, 0x00300000))

paths = ["a", "a/b/c.txt", "Game Data/level 1.pak", "données/日本語/ñ.bin", ".config/x", "...",
         "../x", "a/../../b", "/etc/passwd", "a//b", "a/b/", "a\\b", "a\x00b", "a\nb", "a\x7f",
         "a\xc2\x85", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "x" * 255, "x" * 256,
         "/".join(["a"] * 65), "."]
for i, p in enumerate(paths):
    data = p.encode("latin-1") if any(ord(c) > 127 and ord(c) < 256 for c in p) and not any(ord(c) > 255 for c in p) else p.encode("utf-8", "surrogatepass")
    write("path", "p%02d" % i, data)
print("seeds written")

# download: byte 0 = file count - 1 (bits 0-1) | limits preset << 2, one size byte per file, then
# ops (op | param << 4, plus their bytes). See fuzz/targets/download.c++.
ADD, REMOVE, RELIST, ANSWER, LATE, JOB, FAILJOB, DROPJOB, TICK, STOP, RESTART, OLDEST = range(12)
def op(o, param=0, *extra):
    return bytes([o | param << 4, *extra])
def work(n):  # answer the oldest request honestly and let the disk do a job, n times
    return (op(OLDEST) + op(JOB, 0, 0)) * n
download = {
    "two-honest-sources": bytes([0x01, 5, 13]) + op(ADD, 3) + op(ADD, 1) + work(40),
    "one-liar": bytes([0x02, 4, 2, 3]) + op(ADD, 3) + op(ADD, 3) + work(3) +
        (op(ANSWER, 6, 0) + op(JOB, 0, 0)) * 6 + work(30),
    "wrong-lengths-and-errors": bytes([0x00, 5]) + op(ADD, 3) + op(ADD, 2) + work(2) +
        op(ANSWER, 7, 0) + op(ANSWER, 9, 1) + op(ANSWER, 12, 0) + op(TICK, 1) + work(20),
    "busy-retry-after": bytes([0x00, 4]) + op(ADD, 3) + work(2) + op(ANSWER, 9, 3) +
        op(TICK, 1) + op(TICK, 1) + op(TICK, 5) + work(20),
    "restart-with-a-flipped-chunk": bytes([0x01, 5, 5]) + op(ADD, 3) + work(6) + op(TICK, 6) +
        op(TICK, 6) + work(2) + op(RESTART, 1) + work(30),
    "cancel-midway": bytes([0x01, 5, 4]) + op(ADD, 3) + work(4) + op(STOP, 0) + op(JOB, 0, 0) * 4,
    "all-peers-gone": bytes([0x00, 5]) + op(ADD, 3) + work(3) + op(REMOVE, 0, 0) + op(TICK, 6) * 3,
    "late-answers": bytes([0x00, 5]) + op(ADD, 3) + op(ADD, 3) + work(3) + op(LATE, 0, 0) +
        op(LATE, 0, 1) + op(REMOVE, 0, 0) + op(LATE, 0, 2) + work(20),
    "other-version": bytes([0x00, 4]) + op(ADD, 3) + op(ADD, 11) + op(ANSWER, 10, 0) + work(20),
    "stop-drops-writes": bytes([0x01, 5, 5]) + op(ADD, 3) + op(OLDEST) * 3 + op(STOP, 1) +
        op(DROPJOB, 0, 0) * 3 + op(JOB, 0, 0) * 3,
}
for name, data in download.items():
    write("download", name, data)

# beacon: op = kind (bits 0-2: 0 datagram, 1 time, 2 session, 3 dial end, 4 library change) |
# source << 3 | flag << 7; a datagram op is followed by its length (u16le) and bytes.
# See fuzz/targets/beacon.c++.
def datagram(src, data, truncated=False):
    return bytes([(src << 3) | (0x80 if truncated else 0)]) + struct.pack("<H", len(data)) + data
def tick(n):
    return bytes([1, n])
announce = frames["announce"]
write("beacon", "announce", datagram(1, announce))
write("beacon", "announce-then-time", datagram(1, announce) + tick(30) + tick(255) + tick(255))
write("beacon", "announce-dial-fails", datagram(2, announce) + tick(30) + bytes([3, 0]) + tick(40))
write("beacon", "announce-dial-works", datagram(2, announce) + tick(30) + bytes([0x83, 0]) + tick(40))
write("beacon", "announce-session", datagram(2, announce) + bytes([0x82, 0, 9]) + bytes([2, 0])
      + tick(100) + datagram(2, announce))
write("beacon", "ping", datagram(3, frames["ping"]))
write("beacon", "flood", b"".join(datagram(i % 8, announce) for i in range(40)))
write("beacon", "truncated", datagram(1, announce, True))
write("beacon", "library-change", bytes([4]) + tick(10) + bytes([4]))
