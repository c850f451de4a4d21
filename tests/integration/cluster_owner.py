#!/usr/bin/env python3
"""Reads `redis-cli cluster slots` (one value a line) on stdin and prints the
port of the master serving the slot given as argument."""
import sys

slot = int(sys.argv[1])
lines = [l.strip() for l in sys.stdin if l.strip()]
# Each range: start, end, then per node host, port, id (and nothing else in 7.0).
i = 0
while i + 4 < len(lines):
    if lines[i].isdigit() and lines[i + 1].isdigit() and not lines[i + 2].isdigit():
        lo, hi, port = int(lines[i]), int(lines[i + 1]), lines[i + 3]
        if lo <= slot <= hi:
            print(port)
            sys.exit(0)
        i += 5
    else:
        i += 1
sys.exit(1)
