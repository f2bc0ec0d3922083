"""bench_anchor_cpython.py: the anchor graph in CPython 3.11, the model rcgc follows.

Nodes are instances of a class with __slots__ = ('a', 'b'), the live ones held from a
list, children drawn from the same seeded generator as bench_common.h (so the graph is
the very graph the C contenders build). The collector is disabled while building; then
one untimed full collection, then for each repetition 100,000 fresh garbage 2-cycles and
one timed gc.collect(). Prints the RESULT line that run_anchor.sh parses.

usage: python3 bench_anchor_cpython.py [live [pairs [reps]]]
"""

import gc
import platform
import statistics
import sys
import time

SEED = 0x5EED2024
MASK = (1 << 64) - 1


def rss_bytes():
    """Resident bytes of this process now (/proc/self/statm), 0 where unavailable."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except (OSError, ValueError, IndexError):
        return 0


class Node:
    __slots__ = ("a", "b")


def make_garbage(pairs):
    for _ in range(pairs):
        x = Node()
        y = Node()
        x.a = y
        y.a = x


def main():
    sizes = [1_000_000, 100_000, 5]
    for i, arg in enumerate(sys.argv[1:4]):
        sizes[i] = int(arg)
    live, pairs, reps = sizes
    objects = live + 2 * pairs

    gc.disable()
    rss_before = rss_bytes()
    nodes = [Node() for _ in range(live)]
    s = SEED
    for x in nodes:
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK
        x.a = nodes[((s >> 32) * live) >> 32]
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK
        x.b = nodes[((s >> 32) * live) >> 32]
    del x

    gc.collect()  # warm-up: everything moves to the oldest generation
    rss_after = rss_bytes()
    others = len(gc.get_objects()) - live  # the interpreter's own containers, also scanned
    print(f"# bench_anchor_cpython: {live} live nodes, {pairs} garbage pairs, {reps} reps, "
          f"{platform.python_implementation()} {platform.python_version()}, "
          f"{others} other tracked objects")
    grown = max(rss_after - rss_before, 0)
    print(f"MEMORY name=cpython live={live} rss_growth_bytes={grown} "
          f"bytes_per_node={grown / live:.1f}")
    times = []
    found = []
    for r in range(reps):
        make_garbage(pairs)
        t0 = time.perf_counter_ns()
        n = gc.collect()
        times.append(time.perf_counter_ns() - t0)
        found.append(n)
        print(f"rep {r + 1}: {times[-1]} ns, collected {n}")
    med = statistics.median(times)
    collected = found[0] if all(f == found[0] for f in found) else -1
    print(f"RESULT name=cpython objects={objects} reps={reps} median_ns={med:.0f} "
          f"min_ns={min(times)} ns_per_object={med / objects:.3f} collected={collected}")
    return 0 if collected == 2 * pairs else 1


if __name__ == "__main__":
    sys.exit(main())
