#!/usr/bin/env python3
"""Two builds of peerapi, benched in turns in one run: before and after a change.

    python3 benches/before_after.py BEFORE AFTER [--rounds N] [-- BENCH ARGS]

BEFORE and AFTER are `peerapi` binaries (build the old commit in a git
worktree with the same CARGO_TARGET_DIR and copy its binary aside). Each
round runs `peerapi bench --json ARGS` with both, in alternating order (A B,
then B A), so that the machine's drift falls on both alike. Printed: each
row's median through the hop for both builds, after/before, and the
before build's own spread (max/min over its rounds) as the noise to compare
the ratio with.
"""

import json
import statistics
import subprocess
import sys


def bench(binary, args):
    out = subprocess.run(
        [binary, "bench", "--json", *args],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ).stdout
    return {r["name"]: r for r in json.loads(out)["rows"] if r.get("hop") is not None}


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    rounds = 5
    if "--rounds" in argv:
        i = argv.index("--rounds")
        rounds = int(argv[i + 1])
        del argv[i : i + 2]
    if len(argv) != 2:
        sys.exit(__doc__)
    before, after = argv
    runs = {"before": [], "after": []}
    for n in range(rounds):
        order = [("before", before), ("after", after)]
        if n % 2:
            order.reverse()
        for name, binary in order:
            print(f"round {n + 1}/{rounds}: {name}", file=sys.stderr)
            runs[name].append(bench(binary, extra))
    names = [n for n in runs["before"][0] if all(n in r for r in runs["after"])]
    print(f"{'row (through the hop)':<48} {'before':>11} {'after':>11} {'after/before':>13} {'noise':>7}")
    for name in names:
        b = [r[name]["hop"] for r in runs["before"]]
        a = [r[name]["hop"] for r in runs["after"]]
        unit = runs["before"][0][name]["unit"]
        mb, ma = statistics.median(b), statistics.median(a)
        noise = max(b) / min(b) if min(b) > 0 else float("nan")
        print(
            f"{name:<48} {mb:>8.0f} {unit:<2} {ma:>8.0f} {unit:<2} {ma / mb:>13.2f} {noise:>7.2f}"
        )


if __name__ == "__main__":
    main()
