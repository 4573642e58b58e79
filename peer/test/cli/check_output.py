#!/usr/bin/env python3
"""Checks what `shoal` printed for people: no raw control character (C0 but newline, DEL, C1),
no line or paragraph separator, no bidi control, nothing that is not UTF-8.

check_output.py FILE...        every file; .json files must also be one JSON document a line
Prints one line per file and exits 1 on the first problem.
"""
import json
import sys

FORBIDDEN = set(range(0x00, 0x20)) - {0x0A} | set(range(0x7F, 0xA0)) | {
    0x061C, 0x200E, 0x200F, 0x2028, 0x2029} | set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def check(path):
    data = open(path, "rb").read()
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        return f"not UTF-8 at byte {e.start}"
    for i, ch in enumerate(text):
        if ord(ch) in FORBIDDEN:
            line = text.count("\n", 0, i) + 1
            return f"raw U+{ord(ch):04X} on line {line}"
    if path.endswith(".json"):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    json.loads(line)
                except ValueError as e:
                    return f"line {n} is not JSON: {e}"
    return None


def main():
    bad = False
    for path in sys.argv[1:]:
        problem = check(path)
        size = len(open(path, "rb").read())
        print(f"{'FAIL' if problem else 'ok  '} {path} ({size} bytes){': ' + problem if problem else ''}")
        bad = bad or problem is not None
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
