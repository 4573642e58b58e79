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
