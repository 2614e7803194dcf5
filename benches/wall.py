#!/usr/bin/env python3
"""Whole-process wall times of several commands, interleaved (one round runs each once, so
drifts of a shared machine hit all alike): the median and minimum of each, and the median of
its per-round ratio to the first command.

    N=61 python3 benches/wall.py "aedyn ode --out a.csv --quiet" \
        "aedyn ode --equations my_vanilla.ae --out b.csv --quiet"
"""
import os
import statistics
import subprocess
import sys
import time

rounds = int(os.environ.get("N", "21"))
commands = sys.argv[1:]
if not commands:
    sys.exit(__doc__)
times = [[] for _ in commands]
for _ in range(rounds):
    for i, command in enumerate(commands):
        start = time.perf_counter()
        subprocess.run(command.split(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times[i].append(time.perf_counter() - start)
for command, t in zip(commands, times):
    ratio = statistics.median(a / b for a, b in zip(t, times[0]))
    print(f"{statistics.median(t) * 1e3:9.2f} ms median {min(t) * 1e3:9.2f} ms min  ratio {ratio:.2f}  {command}")
